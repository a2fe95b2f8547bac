/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Stage 0: the coarse segmentation network, whose prediction (dilated by the margin) is the
// attention of stages 1-2 and of inference.
#include "TrainingRun.h"

#include "agcl/DiceLoss.h"

#include <torch/torch.h>

#include <random>

namespace agcl {

at::Tensor
CoarseClassWeights(const at::Tensor & counts)
{
  const at::Tensor n = counts.to(torch::kDouble);
  if (!(n.dim() == 1 && n.ge(0).all().item<bool>() && n.sum().item<double>() > 0))
    throw std::invalid_argument("CoarseClassWeights: expected [C] non-negative counts, not all 0");
  const at::Tensor share = n / n.sum();
  const at::Tensor weights = torch::where(n.gt(0), share.clamp_min(1e-300).pow(-0.5), torch::zeros_like(share));
  return weights / (weights * share).sum();
}

namespace detail {
namespace {

// Dice of the coarse network on the val subjects' coarse grids, pooled per organ (sums of
// overlaps over sums of sizes), mean over the organs that occur: how good the attention that
// stages 1-2 and inference get is.
double
CoarseValidationDice(TrainingRun & run)
{
  const ModelConfig & config = run.model.Config();
  const int64_t       O = static_cast<int64_t>(config.organs.size());
  at::Tensor          overlap = torch::zeros({ O + 1 }, torch::kDouble), size = torch::zeros({ O + 1 }, torch::kDouble);
  for (size_t i : run.validation)
  {
    const CoarseSample s = run.data.Coarse(i, config);
    const at::Tensor   all = run.model.PredictCoarseClasses(s.image, run.device).to(torch::kLong).flatten();
    const at::Tensor   valid = s.classes.flatten().ge(0); // -1: ignored (void)
    const at::Tensor   predicted = all.masked_select(valid);
    const at::Tensor   truth = s.classes.flatten().masked_select(valid);
    overlap.index_add_(0, truth, predicted.eq(truth).to(torch::kDouble));
    size.index_add_(0, truth, torch::ones_like(truth, torch::kDouble));
    size.index_add_(0, predicted, torch::ones_like(predicted, torch::kDouble));
  }
  const at::Tensor present = size.slice(0, 1).gt(0);
  return (2.0 * overlap.slice(0, 1).masked_select(present) / size.slice(0, 1).masked_select(present))
    .mean()
    .item<double>();
}

} // namespace

void
RunCoarseStage(TrainingRun & run)
{
  const AGCLTrainerOptions & o = run.options;
  const ModelConfig &        config = run.model.Config();
  std::vector<CoarseSample>  samples;
  for (size_t i : run.labelled)
  {
    CoarseSample s = run.data.Coarse(i, config);
    // [D, H, W] (one channel) or [C, D, H, W] with the config's C; the classes [D, H, W].
    const bool channelsFirst = s.image.dim() == 4 && s.image.size(0) == config.image_channels;
    TrainingRun::Require(
      (channelsFirst || (s.image.dim() == 3 && config.image_channels == 1)) && s.classes.dim() == 3 &&
        s.classes.sizes() == (channelsFirst ? s.image.sizes().slice(1) : s.image.sizes()),
      "subject '" + run.subjects[i].name + "': coarse image and classes must be [" +
        (config.image_channels == 1 ? std::string("") : std::to_string(config.image_channels) + ", ") +
        "D, H, W] and [D, H, W] of one grid");
    samples.push_back(std::move(s));
  }
  auto &        net = run.model.Coarse();
  AdamOptimizer optimizer(Trainable({ net.get() }), AdamOptions{ 0.9, 0.999, 1e-8, o.weight_decay() });
  run.ResumeInto(optimizer, nullptr);
  DiceLoss      dice;
  const int64_t multiple = net->SizeMultiple();
  // Class weights of the cross-entropy: share^-1/2 over the labelled volumes, mean 1 per voxel.
  const int64_t classes = static_cast<int64_t>(config.organs.size()) + 1;
  at::Tensor    weights = torch::ones({ classes }, torch::kDouble);
  if (o.coarse_class_weights() && !samples.empty())
  {
    at::Tensor counts = torch::zeros({ classes }, torch::kDouble);
    for (const CoarseSample & s : samples)
      counts += torch::bincount(s.classes.flatten().clamp_min(-1) + 1, {}, classes + 1) // -1: ignored
                  .slice(0, 1)
                  .to(torch::kDouble);
    weights = CoarseClassWeights(counts);
  }
  weights = weights.to(torch::kFloat).to(run.device);
  const int64_t window = config.coarse_window_slices;
  // Distributed: the ranks split each step's windows (every rank draws them all, in the same
  // order, and computes its share); each window's loss is divided by the global batch, so the
  // gradients' sum over the ranks is one process's.
  const int64_t ranks = run.group->Size(), rank = run.group->Rank(), batch = o.coarse_batch_size();
  TrainingRun::Require(batch >= ranks,
                       "stage 0: --coarse-batch " + std::to_string(batch) + " is smaller than the " +
                         std::to_string(ranks) + " processes (each needs at least one window per step)");
  const int64_t mine = rank * batch / ranks, next = (rank + 1) * batch / ranks;
  run.synchronised = Trainable({ net.get() });
  run.gradientReduction = Reduction::Sum;
  run.BroadcastModel();
  net->train();
  run.RunSteps(
    0,
    run.steps[0],
    o.coarse_learning_rate(),
    optimizer,
    [&]() -> std::pair<double, int64_t> {
      const uint64_t stepSeed = StepSeed(o.seed(), 0, run.step);
      torch::manual_seed(stepSeed);
      std::mt19937_64 rng(stepSeed);
      double          lossSum = 0.0;
      for (int64_t b = 0; b < o.coarse_batch_size(); ++b)
      {
        // A random window of slices of a random labelled volume, padded to the network's multiple.
        const CoarseSample & s = samples[rng() % samples.size()];
        const at::Tensor     sampleImage = s.image.dim() == 3 ? s.image.unsqueeze(0) : s.image; // [C, D, H, W]
        const int64_t        depth = sampleImage.size(1);
        int64_t              first = 0, count = depth;
        if (window > 0 && depth > window)
        {
          first = static_cast<int64_t>(rng() % static_cast<uint64_t>(depth - window + 1));
          count = window;
        }
        if (b < mine || b >= next)
          continue; // another rank's window
        at::Tensor           image = sampleImage.narrow(1, first, count);
        at::Tensor           truth = s.classes.narrow(0, first, count);
        std::vector<int64_t> padding; // D not padded for a planar (2D) network
        for (int d = 2; d >= 0; --d)
        {
          const int64_t m = d == 0 && net->options().planar() ? 1 : multiple;
          padding.push_back(0);
          padding.push_back((truth.size(d) + m - 1) / m * m - truth.size(d));
        }
        image = torch::constant_pad_nd(image, padding, 0.0).unsqueeze(0).to(run.device);
        truth = torch::constant_pad_nd(truth, padding, 0).unsqueeze(0).to(run.device);
        const at::Tensor logits = net->forward(image);
        const at::Tensor loss =
          (dice(logits, truth) +
           torch::nn::functional::cross_entropy(
             logits, truth, torch::nn::functional::CrossEntropyFuncOptions().weight(weights).ignore_index(-1))) /
          static_cast<double>(o.coarse_batch_size());
        loss.backward();
        lossSum += loss.item<double>();
      }
      return { lossSum, next - mine };
    },
    nullptr,
    [&] { run.WriteCheckpoint(&optimizer, nullptr, nullptr); });
  net->eval();
  if (!run.validation.empty())
  {
    run.coarseDice = CoarseValidationDice(run);
    run.Log({ { "stage", 0 }, { "step", run.step }, { "coarse_val_dice", run.coarseDice } });
  }
  run.FinishStage();
}

} // namespace detail
} // namespace agcl
