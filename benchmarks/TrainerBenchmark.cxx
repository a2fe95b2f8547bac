/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Training throughput of agcl::AGCLTrainer (stages 1 and 2) for the CPU-sized model
// (ResNet-18 width 16, 64 x 64 patches, decoder 64/16), and the data pipeline's overhead:
// the same steps with the loader thread (prefetch), without it, and on pre-made batches
// (the step's computation alone, written out here the way the trainer does it).
//
// A trainer step is timed as (Run with N steps) - (Run with 0 steps): the difference leaves out
// the fixed costs (patch pools, model file). Args: stage (1, 2), variant (0 no prefetch,
// 1 prefetch, 2 pre-made batches).
#include "agcl/AGCLModel.h"
#include "agcl/AGCLTrainer.h"
#include "agcl/AdamOptimizer.h"
#include "agcl/ConditionalContrastiveLoss.h"
#include "agcl/DiceLoss.h"
#include "agcl/PairedAugmentation.h"
#include "agcl/ProjectionHead.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>

namespace {
namespace fs = std::filesystem;
constexpr int64_t kSteps = 16;
constexpr int64_t kPatch = 64;

// Random query patches of the 12 BTCV organs, two modalities; 2 training rows (no val row: a
// validation pass at the last step would be counted as step time).
class RandomPatches : public agcl::TrainingData
{
public:
  std::vector<agcl::TrainingSubject>
  Subjects() const override
  {
    return { { "a", 0, "train", true }, { "b", 1, "train", true } };
  }
  agcl::CoarseSample
  Coarse(size_t, const agcl::ModelConfig &) override
  {
    return { torch::rand({ 8, 16, 16 }), torch::randint(13, { 8, 16, 16 }, torch::kLong) };
  }
  agcl::PatchSet
  Patches(size_t index, agcl::AttentionSource, agcl::AGCLModel &, const c10::Device &, int64_t n, uint64_t seed)
    override
  {
    torch::manual_seed(seed);
    const int64_t total = 12 * n;
    return { torch::rand({ total, 2, kPatch, kPatch }),
             torch::randint(2, { total, kPatch, kPatch }, torch::kLong),
             torch::arange(total, torch::kLong) % 12,
             torch::full({ total }, static_cast<int64_t>(index % 2), torch::kLong) };
  }
};

agcl::AGCLTrainerOptions
Options(int stage, int64_t steps, bool prefetch)
{
  const fs::path directory = fs::temp_directory_path() / "agcl_trainer_benchmark";
  fs::remove_all(directory);
  return agcl::AGCLTrainerOptions()
    .output_directory(directory.string())
    .stage(stage)
    .pretraining_steps(steps)
    .decoder_steps(steps)
    .pretraining_batch_size(32)
    .decoder_batch_size(16)
    .patches_per_organ(8)
    .checkpoint_every(1000)
    .validate_every(1000)
    .log_every(1000)
    .prefetch(prefetch)
    .show_progress(false);
}

double
Seconds(const std::function<void()> & work)
{
  const auto start = std::chrono::steady_clock::now();
  work();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void
BM_TrainerSteps(benchmark::State & state)
{
  const int     stage = static_cast<int>(state.range(0));
  const int64_t variant = state.range(1);
  const int64_t batch = stage == 1 ? 32 : 16;
  RandomPatches data;
  for (auto _ : state)
  {
    double seconds = 0;
    if (variant < 2)
    {
      const double fixed = Seconds([&] { agcl::AGCLTrainer(Options(stage, 0, variant == 1)).Run(data); });
      const double total = Seconds([&] { agcl::AGCLTrainer(Options(stage, kSteps, variant == 1)).Run(data); });
      seconds = total - fixed;
    }
    else
    {
      // Pre-made batches: the step's computation alone.
      torch::manual_seed(1);
      agcl::AGCLModel                model;
      auto &                         encoder = model.Encoder();
      std::vector<torch::Tensor>     inputs, masks;
      const agcl::PairedAugmentation augmentation;
      for (int64_t s = 0; s < kSteps; ++s)
      {
        const torch::Tensor patches = torch::rand({ batch, 2, kPatch, kPatch });
        inputs.push_back(stage == 1 ? augmentation.Forward(patches, static_cast<uint64_t>(s)) : patches);
        masks.push_back(torch::randint(2, { batch, kPatch, kPatch }, torch::kLong));
      }
      const torch::Tensor organ = torch::arange(batch, torch::kLong) % 12, modality = organ % 2;
      if (stage == 1)
      {
        agcl::ProjectionHead       head(agcl::ProjectionHeadOptions(encoder->HighLevelChannels()).out_features(128));
        std::vector<torch::Tensor> parameters = encoder->parameters();
        for (const auto & p : head->parameters())
          parameters.push_back(p);
        agcl::AdamOptimizer              adam(parameters, agcl::AdamOptions{ 0.9, 0.999, 1e-8, 1e-4 });
        agcl::ConditionalContrastiveLoss loss(agcl::ConditionalContrastiveLossOptions().check_finite(false));
        const torch::Tensor labels = agcl::ContrastiveLabels(agcl::PretrainingMode::AGCL, modality, organ, 12);
        encoder->train();
        seconds = Seconds([&] {
          for (int64_t s = 0; s < kSteps; ++s)
          {
            adam.ZeroGrad();
            const torch::Tensor value = loss(head->forward(encoder->Represent(inputs[s])), labels);
            benchmark::DoNotOptimize(value.item<double>());
            value.backward();
            adam.Step(1e-3);
          }
        });
      }
      else
      {
        auto & decoder = model.Decoder();
        encoder->SetFrozen(true);
        agcl::AdamOptimizer adam(decoder->parameters(), agcl::AdamOptions{ 0.9, 0.999, 1e-8, 1e-4 });
        agcl::DiceLoss      dice;
        decoder->train();
        seconds = Seconds([&] {
          for (int64_t s = 0; s < kSteps; ++s)
          {
            adam.ZeroGrad();
            agcl::EncoderFeatures features;
            {
              torch::NoGradGuard noGrad;
              features = encoder->forward(inputs[s]);
            }
            const torch::Tensor value =
              dice(decoder->forward(features.low_level, features.high_level, { kPatch, kPatch }), masks[s]);
            benchmark::DoNotOptimize(value.item<double>());
            value.backward();
            adam.Step(1e-3);
          }
        });
      }
    }
    state.SetIterationTime(seconds);
  }
  // Network inputs: stage 1 two views per patch.
  state.counters["patches_per_s"] = benchmark::Counter(
    static_cast<double>(state.iterations() * kSteps * batch * (stage == 1 ? 2 : 1)), benchmark::Counter::kIsRate);
}
} // namespace

BENCHMARK(BM_TrainerSteps)
  ->ArgNames({ "stage", "variant" })
  ->Args({ 1, 2 })
  ->Args({ 1, 1 })
  ->Args({ 1, 0 })
  ->Args({ 2, 2 })
  ->Args({ 2, 1 })
  ->Args({ 2, 0 })
  ->UseManualTime()
  ->Iterations(5)
  ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
