/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Stage 2: the decoder (and, with finetune_encoder, the encoder) trained on the
// labelled subjects' query patches with the Dice loss, validated on the val subjects' patches;
// the best validation weights are kept.
#include "TrainingRun.h"

#include "agcl/DiceLoss.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace agcl::detail {
namespace {

// Dice of the val patches, pooled per organ (sum of overlaps over sums of sizes), mean over the
// organs that occur; -1 without validation patches.
double
PatchValidationDice(TrainingRun & run, const PatchSet & validation)
{
  if (validation.Size() == 0)
    return -1.0;
  torch::NoGradGuard noGrad;
  auto &             encoder = run.model.Encoder();
  auto &             decoder = run.model.Decoder();
  decoder->eval();
  encoder->eval();
  const int64_t P = run.model.Config().patch_size;
  const int64_t O = static_cast<int64_t>(run.model.Config().organs.size());
  at::Tensor    overlap = torch::zeros({ O }, torch::kDouble), size = torch::zeros({ O }, torch::kDouble);
  for (int64_t first = 0; first < validation.Size(); first += 64)
  {
    const int64_t    n = std::min<int64_t>(64, validation.Size() - first);
    const at::Tensor x = validation.image.narrow(0, first, n).to(run.device);
    const auto       features = encoder->forward(x);
    at::Tensor       predicted = decoder->forward(features.low_level, features.high_level, { P, P }, features.stem)
                             .argmax(1)
                             .to(torch::kCPU)
                             .to(torch::kDouble);
    const at::Tensor mask = validation.mask.narrow(0, first, n);
    const at::Tensor valid = mask.ge(0).to(torch::kDouble); // -1: ignored (void)
    const at::Tensor truth = mask.clamp_min(0).to(torch::kDouble);
    predicted = predicted * valid;
    const at::Tensor organ = validation.organ.narrow(0, first, n);
    overlap.index_add_(0, organ, (predicted * truth).sum({ 1, 2 }));
    size.index_add_(0, organ, (predicted + truth).sum({ 1, 2 }));
  }
  const at::Tensor present = size > 0;
  if (!present.any().item<bool>())
    return -1.0;
  return (2.0 * overlap.masked_select(present) / size.masked_select(present)).mean().item<double>();
}

// The paper's protocol keeps the encoder frozen in stage 2. Its BatchNorm running statistics
// are first re-estimated on stage 1's (unlabelled) training patches, without augmentation and
// without changing a weight: a randomly initialised encoder (RI) would otherwise normalise with
// its initial statistics (mean 0, variance 1), which fit no real input, and a pre-trained one
// with statistics of stage 1's augmented views. Every frozen mode gets the same treatment.
void
EstimateFrozenEncoderStatistics(TrainingRun & run)
{
  constexpr int64_t kBatch = 64, kBatches = 64; // at most 4096 patches
  const PatchSet    patches = run.Pool(run.pretraining, run.pretrainingAttention);
  if (patches.Size() == 0)
    return;
  torch::manual_seed(StepSeed(run.options.seed(), 2, -1, 7));
  const at::Tensor        order = torch::randperm(patches.Size(), torch::kLong);
  const int64_t           used = std::min(patches.Size(), kBatch * kBatches);
  std::vector<at::Tensor> batches;
  for (int64_t first = 0; first < used; first += kBatch)
    batches.push_back(
      patches.image.index_select(0, order.narrow(0, first, std::min(kBatch, used - first))).to(run.device));
  run.model.Encoder()->EstimateBatchNormStatistics(batches);
  run.Log({ { "stage", 2 }, { "step", 0 }, { "batchnorm_statistics_patches", used } });
}

} // namespace

void
RunDecoderStage(TrainingRun & run)
{
  const AGCLTrainerOptions & o = run.options;
  auto &                     encoder = run.model.Encoder();
  auto &                     decoder = run.model.Decoder();
  const bool                 trainEncoder = o.finetune_encoder();
  encoder->SetFrozen(!trainEncoder);
  if (!trainEncoder && run.step == 0)
    EstimateFrozenEncoderStatistics(run);
  std::vector<torch::nn::Module *> trained{ decoder.get() };
  if (trainEncoder)
    trained.push_back(encoder.get());
  const std::vector<at::Tensor> parameters = Trainable(trained);
  AdamOptimizer                 optimizer(parameters, AdamOptions{ 0.9, 0.999, 1e-8, o.weight_decay() });
  if (trainEncoder && o.encoder_learning_rate() > 0.0)
  {
    // The decoder's parameters come first (at the decoder's rate), then the encoder's.
    std::vector<double> scales(parameters.size(), o.encoder_learning_rate() / o.decoder_learning_rate());
    std::fill_n(scales.begin(), Trainable({ decoder.get() }).size(), 1.0);
    optimizer.SetLearningRateScales(std::move(scales));
  }
  run.ResumeInto(optimizer, nullptr);
  run.BroadcastModel();
  run.synchronised = parameters;
  run.gradientReduction = Reduction::Mean; // each rank's Dice loss on its share, averaged
  // The best weights so far (encoder and decoder), carried through checkpoints.
  ModelBundle best;
  if (run.haveCheckpoint && run.step > 0 && !run.checkpoint.WithPrefix("best").empty())
    for (const auto & [name, tensor] : run.checkpoint.WithPrefix("best"))
      best.Add(name, tensor);
  const PatchSet patches = run.Pool(run.labelled, o.attention());
  TrainingRun::Require(patches.Size() > 0,
                       "stage 2: no query patches (no organ has attention in any labelled subject)");
  const PatchSet validation = run.Pool(run.validation, AttentionSource::Coarse);
  DiceLoss       dice;
  const int64_t  P = run.model.Config().patch_size;
  auto           setTrain = [&] {
    decoder->train();
    encoder->train(); // a frozen encoder keeps BatchNorm in eval mode
  };
  auto keepIfBest = [&](double value) {
    const bool better = value > run.bestDice;
    if (better)
    {
      run.bestDice = value;
      best = ModelBundle();
      best.AddModule("encoder", *encoder);
      best.AddModule("decoder", *decoder);
    }
    nlohmann::json line = { { "stage", 2 }, { "step", run.step }, { "val_dice", value } };
    if (better)
      line["best"] = true;
    run.Log(line);
  };
  if (run.step == 0)
    run.bestDice = -1.0;
  setTrain();
  // -1: 20 validations over the stage (a validation costs about as much as the patches of ~8
  // training steps at batch 16 on the study cohort).
  const int64_t steps = run.steps[2];
  const int64_t validateEvery = o.validate_every() > 0 ? o.validate_every() : std::max<int64_t>(1, (steps + 19) / 20);
  auto          nextBatch = run.Batches(patches, 2, o.decoder_batch_size(), steps, nullptr);
  run.RunSteps(
    2,
    steps,
    o.decoder_learning_rate(),
    optimizer,
    [&]() -> std::pair<double, int64_t> {
      const Batch batch = nextBatch();
      torch::manual_seed(StepSeed(o.seed(), 2, run.step)); // decoder dropout
      const at::Tensor x = batch.image.to(run.device);
      EncoderFeatures  features;
      if (trainEncoder)
        features = encoder->forward(x);
      else
      {
        torch::NoGradGuard noGrad;
        features = encoder->forward(x);
      }
      const at::Tensor logits = decoder->forward(features.low_level, features.high_level, { P, P }, features.stem);
      const at::Tensor mask = batch.mask.to(run.device);
      at::Tensor       loss = o.decoder_dice() ? dice(logits, mask) : torch::zeros({}, logits.options());
      if (o.decoder_cross_entropy())
        loss =
          loss + torch::nn::functional::cross_entropy(
                   logits, mask.to(torch::kLong), torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-1));
      if (run.group->Size() > 1)
        loss = loss * batch.ShareWeight(run.group->Size()); // the ranks' average = the global mean
      const double value = loss.item<double>();
      if (std::isfinite(value))
        loss.backward();
      return { value, x.size(0) };
    },
    [&] {
      if (run.step % validateEvery == 0 || run.step == steps)
      {
        const double value = PatchValidationDice(run, validation);
        setTrain();
        if (value >= 0.0)
          keepIfBest(value);
      }
    },
    [&] { run.WriteCheckpoint(&optimizer, nullptr, best.Tensors().empty() ? nullptr : &best); });
  // The best validation weights (the last ones without validation patches).
  if (!best.Tensors().empty())
  {
    best.LoadInto("encoder", *encoder);
    best.LoadInto("decoder", *decoder);
  }
  encoder->SetFrozen(false);
  encoder->eval();
  decoder->eval();
  run.FinishStage();
}

} // namespace agcl::detail
