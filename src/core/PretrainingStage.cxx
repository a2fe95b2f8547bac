/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Stage 1: pre-training of the encoder on query patches (attention as a second channel), with
// the conditional contrastive loss of the chosen mode on a projection head, or the CE baseline's
// modality x organ classifier.
#include "TrainingRun.h"

#include "agcl/ConditionalContrastiveLoss.h"
#include "agcl/ModalityOrganClassifier.h"
#include "agcl/ProjectionHead.h"

#include <torch/torch.h>

#include <cmath>

namespace agcl::detail {

void
RunPretrainingStage(TrainingRun & run)
{
  const AGCLTrainerOptions & o = run.options;
  const ModelConfig &        config = run.model.Config();
  if (o.mode() == PretrainingMode::Random || run.steps[1] == 0)
  {
    run.FinishStage();
    return;
  }
  TrainingRun::Require(!run.pretraining.empty(), "stage 1: no training subjects of the chosen pre-training modalities");
  const PatchSet patches = run.Pool(run.pretraining, run.pretrainingAttention);
  TrainingRun::Require(patches.Size() > 0,
                       "stage 1: no query patches (no organ has attention in any training subject)");
  auto &                             encoder = run.model.Encoder();
  std::shared_ptr<torch::nn::Module> auxiliary;
  ProjectionHead                     head{ nullptr };
  ModalityOrganClassifier            classifier{ nullptr };
  torch::manual_seed(StepSeed(o.seed(), 1, -1)); // the auxiliary module's initial weights
  if (o.mode() == PretrainingMode::CE)
  {
    classifier = ModalityOrganClassifier(
      ModalityOrganClassifierOptions(encoder->HighLevelChannels(), config.modalities.size(), config.organs.size()));
    auxiliary = classifier.ptr();
  }
  else
  {
    head = ProjectionHead(ProjectionHeadOptions(encoder->HighLevelChannels()).out_features(o.projection_features()));
    auxiliary = head.ptr();
  }
  auxiliary->to(run.device);
  encoder->SetFrozen(false);
  AdamOptimizer optimizer(Trainable({ encoder.get(), auxiliary.get() }),
                          AdamOptions{ 0.9, 0.999, 1e-8, o.weight_decay() });
  run.ResumeInto(optimizer, auxiliary.get());
  run.BroadcastModel(auxiliary.get());
  run.synchronised = Trainable({ encoder.get(), auxiliary.get() });
  // Contrastive modes: each rank's loss is its share of the global batch's loss (its anchors
  // against every rank's embeddings), so the gradients are summed; CE: the ranks' means averaged.
  const bool distributedContrastive = run.group->Size() > 1 && o.mode() != PretrainingMode::CE;
  run.gradientReduction = distributedContrastive ? Reduction::Sum : Reduction::Mean;
  ConditionalContrastiveLoss contrastive(
    ConditionalContrastiveLossOptions().temperature(o.temperature()).check_finite(false));
  PairedAugmentation augmentation(PairedAugmentationOptions().image_channels(config.image_channels));
  encoder->train();
  auxiliary->train();
  auto nextBatch = run.Batches(patches, 1, o.pretraining_batch_size(), run.steps[1], &augmentation);
  run.RunSteps(
    1,
    run.steps[1],
    o.pretraining_learning_rate(),
    optimizer,
    [&]() -> std::pair<double, int64_t> {
      const Batch batch = nextBatch();
      torch::manual_seed(StepSeed(o.seed(), 1, run.step));
      const at::Tensor views = batch.image.to(run.device);
      const at::Tensor representation = encoder->Represent(views);
      const at::Tensor modality = batch.modality.to(run.device), organ = batch.organ.to(run.device);
      at::Tensor       loss;
      if (o.mode() == PretrainingMode::CE)
      {
        loss = classifier->Loss(classifier->forward(representation), modality.repeat({ 2 }), organ.repeat({ 2 }));
        if (run.group->Size() > 1)
          loss = loss * batch.ShareWeight(run.group->Size()); // the ranks' average = the global mean
      }
      else
      {
        at::Tensor labels = ContrastiveLabels(o.mode(), modality, organ, static_cast<int64_t>(config.organs.size()));
        if (o.mode() == PretrainingMode::SSCL)
          labels = labels + batch.first; // patch ids of the global batch
        if (distributedContrastive)
          loss = DistributedContrastiveLoss(contrastive, head->forward(representation), labels, *run.group).first;
        else
          loss = contrastive(head->forward(representation), labels);
      }
      const double value = loss.item<double>();
      // (Distributed contrastive: backward runs collectives, so every rank runs it; a
      // non-finite global loss then stops every rank before the optimizer step.)
      if (std::isfinite(value) || distributedContrastive)
        loss.backward();
      return { value, views.size(0) };
    },
    nullptr,
    [&] { run.WriteCheckpoint(&optimizer, auxiliary.get(), nullptr); });
  encoder->eval();
  run.FinishStage();
}

} // namespace agcl::detail
