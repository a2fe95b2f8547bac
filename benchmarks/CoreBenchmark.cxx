/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// The learning core: contrastive loss, encoder, augmentation, one stage-1 training step, and the
// inference of the three networks (what AGCLSegmentationFilter runs).
// Device: $AGCL_BENCH_DEVICE (cpu by default; cuda on a GPU machine). CUDA timings synchronise
// the device at the end of each iteration. Results: Documentation/performance.md.
#include "agcl/AdamOptimizer.h"
#include "agcl/AGCLModel.h"
#include "agcl/AttentionMap.h"
#include "agcl/ConditionalContrastiveLoss.h"
#include "agcl/Device.h"
#include "agcl/GridResample.h"
#include "agcl/PairedAugmentation.h"
#include "agcl/PatchStages.h"
#include "agcl/PictureStages.h"
#include "agcl/ProjectionHead.h"
#include "agcl/ResNetEncoder.h"
#include "agcl/Threading.h"

#include <ATen/CPUGeneratorImpl.h>
#include <benchmark/benchmark.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <numeric>
#include <vector>

namespace {
torch::Device
BenchDevice()
{
  const char * text = std::getenv("AGCL_BENCH_DEVICE");
  return agcl::ParseDevice(text ? text : "cpu");
}

void
Sync(const torch::Device & device)
{
  if (device.is_cuda())
  {
    torch::cuda::synchronize();
  }
}

// Arg: 2N. d = 256 (the projection size).
void
BM_ContrastiveLossForwardBackward(benchmark::State & state)
{
  const torch::Device device = BenchDevice();
  const int64_t       rows = state.range(0);
  torch::manual_seed(0);
  torch::Tensor z = torch::nn::functional::normalize(torch::randn({ rows, 256 }, device),
                                                     torch::nn::functional::NormalizeFuncOptions().dim(1))
                      .requires_grad_(true);
  const torch::Tensor labels =
    torch::randint(0, 24, { rows }, torch::TensorOptions().dtype(torch::kLong).device(device));
  agcl::ConditionalContrastiveLoss loss;
  for (auto _ : state)
  {
    z.mutable_grad() = torch::Tensor();
    loss(z, labels).backward();
    Sync(device);
  }
  state.SetItemsProcessed(state.iterations() * rows);
}

// Args: depth, width, patch size; batch 16 patches of 2 channels. Forward + backward of the encoder.
void
BM_EncoderForwardBackward(benchmark::State & state)
{
  const torch::Device device = BenchDevice();
  const int64_t       batch = 16, size = state.range(2);
  torch::manual_seed(0);
  agcl::ResNetEncoder encoder(agcl::ResNetEncoderOptions().depth(state.range(0)).base_width(state.range(1)));
  encoder->to(device);
  encoder->train();
  const torch::Tensor x = torch::randn({ batch, 2, size, size }, device);
  for (auto _ : state)
  {
    encoder->zero_grad();
    const auto features = encoder(x);
    (features.high_level.mean() + features.low_level.mean()).backward();
    Sync(device);
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

// Arg: patch size; 64 patches -> 128 views.
void
BM_PairedAugmentation(benchmark::State & state)
{
  const torch::Device      device = BenchDevice();
  const int64_t            size = state.range(0);
  const torch::Tensor      batch = torch::rand({ 64, 2, size, size }, device);
  agcl::PairedAugmentation augmentation;
  at::Generator            generator = at::make_generator<at::CPUGeneratorImpl>(1);
  for (auto _ : state)
  {
    benchmark::DoNotOptimize(augmentation.Forward(batch, generator).data_ptr());
    Sync(device);
  }
  state.SetItemsProcessed(state.iterations() * 64);
}

// BM_Stage1TrainingStep's networks, ResNet-18 width 16 + projection head, seeded and on `device`.
struct Stage1Networks
{
  explicit Stage1Networks(const torch::Device & device)
    : encoder(SeededOptions())
    , head(agcl::ProjectionHeadOptions(encoder->HighLevelChannels()))
  {
    encoder->to(device);
    head->to(device);
  }
  // The seed is set before the encoder's weights are drawn.
  static agcl::ResNetEncoderOptions
  SeededOptions()
  {
    torch::manual_seed(0);
    return agcl::ResNetEncoderOptions().depth(18).base_width(16);
  }
  std::vector<torch::Tensor>
  Parameters() const
  {
    std::vector<torch::Tensor> parameters = encoder->parameters();
    for (const auto & p : head->parameters())
      parameters.push_back(p);
    return parameters;
  }
  agcl::ResNetEncoder  encoder;
  agcl::ProjectionHead head;
};

// A benchmark argument as Adam's kernels: 1 multi-tensor, 0 one parameter at a time.
agcl::AdamOptions::Kernels
AdamKernels(int64_t argument)
{
  return argument != 0 ? agcl::AdamOptions::Kernels::MultiTensor : agcl::AdamOptions::Kernels::PerParameter;
}

// One stage-1 step as the trainer runs it: 32 patches of 2 x 64 x 64 -> 64 augmented views,
// ResNet-18 width 16 + projection head, conditional contrastive loss, backward, the trainer's
// Adam (agcl::AdamOptimizer). benchmarks/python/train_step_bench.py runs the same step in
// PyTorch for the C++/Python ratio. Args: non-finite input checks (1: on, the default; 0: off),
// Adam's kernels (1: multi-tensor, the default on CUDA; 0: one parameter at a time, the default
// on the CPU).
void
BM_Stage1TrainingStep(benchmark::State & state)
{
  const torch::Device device = BenchDevice();
  Stage1Networks      networks(device);
  auto &              encoder = networks.encoder;
  auto &              head = networks.head;
  encoder->train();
  agcl::AdamOptions adamOptions;
  adamOptions.kernels = AdamKernels(state.range(1));
  agcl::AdamOptimizer              optimizer(networks.Parameters(), adamOptions);
  const bool                       check = state.range(0) != 0;
  agcl::ConditionalContrastiveLoss loss(agcl::ConditionalContrastiveLossOptions().check_finite(check));
  agcl::PairedAugmentation         augmentation(agcl::PairedAugmentationOptions().check_finite(check));
  at::Generator                    generator = at::make_generator<at::CPUGeneratorImpl>(1);
  const torch::Tensor              patches = torch::rand({ 32, 2, 64, 64 }, device);
  const torch::Tensor labels = (torch::arange(64, torch::TensorOptions().dtype(torch::kLong)) % 8).to(device);
  auto                step = [&] {
    const torch::Tensor views = augmentation.Forward(patches, generator);
    optimizer.ZeroGrad();
    loss(head(encoder->Represent(views)), labels).backward();
    optimizer.Step(1e-3);
    Sync(device);
  };
  // As the Python script: 3 warm-up steps, then each step timed on its own; the median (the
  // script's figure) and the mean are reported as counters.
  for (int warm = 0; warm < 3; ++warm)
    step();
  std::vector<double> milliseconds;
  for (auto _ : state)
  {
    const auto start = std::chrono::steady_clock::now();
    step();
    milliseconds.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  state.SetItemsProcessed(state.iterations() * 32);
  std::sort(milliseconds.begin(), milliseconds.end());
  const size_t n = milliseconds.size();
  state.counters["median_ms"] = n % 2 ? milliseconds[n / 2] : 0.5 * (milliseconds[n / 2 - 1] + milliseconds[n / 2]);
  state.counters["mean_ms"] = std::accumulate(milliseconds.begin(), milliseconds.end(), 0.0) / static_cast<double>(n);
}

// The optimizer alone: one Adam step over BM_Stage1TrainingStep's parameters (their gradients
// set once). Arg: multi-tensor (1) or one parameter at a time (0).
void
BM_AdamStep(benchmark::State & state)
{
  const torch::Device        device = BenchDevice();
  const Stage1Networks       networks(device);
  std::vector<torch::Tensor> parameters = networks.Parameters();
  for (auto & p : parameters)
    p.mutable_grad() = torch::randn_like(p);
  agcl::AdamOptions adamOptions;
  adamOptions.kernels = AdamKernels(state.range(0));
  adamOptions.weight_decay = 1e-4;
  agcl::AdamOptimizer optimizer(parameters, adamOptions);
  for (auto _ : state)
  {
    optimizer.Step(1e-3);
    Sync(device);
  }
  state.counters["parameters"] = static_cast<double>(parameters.size());
}
} // namespace

// Inference of the patch networks, as AGCLSegmentationFilter runs them: eval mode, no gradients,
// encoder then decoder, organ probability; batch of 64 patches of 2 channels.
// Args: depth, width, patch size, decoder channels[, decoder output stride (4 default, or 2)].
void
BM_PatchInference(benchmark::State & state)
{
  const torch::Device device = BenchDevice();
  const int64_t       batch = 64, size = state.range(2);
  torch::manual_seed(0);
  agcl::ModelConfig config;
  config.encoder_depth = state.range(0);
  config.encoder_width = state.range(1);
  config.patch_size = size;
  config.decoder_channels = state.range(3);
  config.decoder_low_level_projection = state.range(3) == 256 ? 48 : 16;
  config.decoder_output_stride = state.range(4);
  agcl::AGCLModel model(config);
  model.Encoder()->to(device);
  model.Decoder()->to(device);
  model.Encoder()->eval();
  model.Decoder()->eval();
  const torch::Tensor x = torch::rand({ batch, 2, size, size }, device);
  torch::NoGradGuard  noGrad;
  for (auto _ : state)
  {
    const auto features = model.Encoder()->forward(x);
    const auto logits =
      model.Decoder()->forward(features.low_level, features.high_level, { size, size }, features.stem);
    benchmark::DoNotOptimize(agcl::ASPPDecoderImpl::OrganProbability(logits).data_ptr());
    Sync(device);
  }
  state.SetItemsProcessed(state.iterations() * batch);
}

// The stages between the networks as tensor work (issue 17), on a 512 x 512 x 120 CT grid
// (0.7 x 0.7 x 2.5 mm): one organ's attention region, an ellipsoid of the liver's size (radii
// 100 x 70 x 50 mm) grown by `arg` mm (10: the models' margin); second arg: the kernels (1: the
// default, on the CPU the fused loop; 2: the same with a MarginWorkspace reused between calls;
// 0: the tensor operations a GPU runs).
void
BM_GrowByMargin(benchmark::State & state)
{
  const torch::Device   device = BenchDevice();
  const auto            options = torch::TensorOptions().device(device);
  const torch::Tensor   z = torch::arange(120, options.dtype(torch::kFloat)).mul(2.5).sub(150.0).view({ -1, 1, 1 });
  const torch::Tensor   y = torch::arange(512, options.dtype(torch::kFloat)).mul(0.7).sub(179.0).view({ 1, -1, 1 });
  const torch::Tensor   x = torch::arange(512, options.dtype(torch::kFloat)).mul(0.7).sub(150.0).view({ 1, 1, -1 });
  const torch::Tensor   mask = (x / 100.0).square() + (y / 70.0).square() + (z / 50.0).square() <= 1.0;
  agcl::MarginWorkspace workspace;
  for (auto _ : state)
  {
    benchmark::DoNotOptimize(
      agcl::GrowByMargin(mask,
                         { 2.5, 0.7, 0.7 },
                         static_cast<double>(state.range(0)),
                         state.range(1) != 0 ? agcl::MarginKernels::Automatic : agcl::MarginKernels::TensorOps,
                         state.range(1) == 2 ? &workspace : nullptr));
    Sync(device);
  }
  state.counters["organ_voxels"] = static_cast<double>(mask.sum().item<int64_t>());
}

// The CT (512 x 512 x 120 at 0.7 x 0.7 x 2.5 mm, float) onto the 4 mm coarse grid, trilinear.
void
BM_ResampleToCoarseGrid(benchmark::State & state)
{
  const torch::Device device = BenchDevice();
  const torch::Tensor ct = torch::rand({ 120, 512, 512 }, torch::TensorOptions().device(device));
  const auto          edges = [](double coarse, double fine) {
    return agcl::AxisMapping{ coarse / fine, 0.5 * coarse / fine - 0.5 };
  };
  const std::array<agcl::AxisMapping, 3> mapping{ edges(4.0, 2.5), edges(4.0, 0.7), edges(4.0, 0.7) };
  for (auto _ : state)
  {
    benchmark::DoNotOptimize(agcl::ResampleLinear(ct, mapping, { 75, 90, 90 }, 0.0));
    Sync(device);
  }
}

// The coarse network on one window of the coarse grid (88 x 88 x 32 voxels: a 350 mm field of
// view at 4 mm, the default window of 32 slices), through AGCLModel::PredictCoarseClasses
// (padding, argmax, classes back on the CPU). Arg: base channels (8: the CPU-sized default).
void
BM_CoarseNetworkWindow(benchmark::State & state)
{
  const torch::Device device = BenchDevice();
  torch::manual_seed(0);
  agcl::ModelConfig config;
  config.coarse_base_channels = state.range(0);
  agcl::AGCLModel     model(config);
  const torch::Tensor volume = torch::rand({ 32, 88, 88 });
  for (auto _ : state)
  {
    benchmark::DoNotOptimize(model.PredictCoarseClasses(volume, device).data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * 32 * 88 * 88);
}

// The whole pipeline on a 2D picture (issue 19, agcl::SegmentPicture): a random RGB picture of
// width x height pixels (500 x 375: PASCAL VOC's usual size) through a random 2D model with the
// configuration of models/scenes-demo.json (5 classes, 32-pixel patches, width-16 ResNet-18,
// coarse grid at 4 pixels) and every threshold at 0. The random coarse network's attention decides
// how many patches run: the counter "patches" says how many (the networks dominate; see
// BM_PatchInference for their cost per patch).
void
BM_SegmentPicture(benchmark::State & state)
{
  const torch::Device device = BenchDevice();
  torch::manual_seed(0);
  agcl::ModelConfig config;
  config.organs = { { "disc", 1 }, { "box", 2 }, { "triangle", 3 }, { "ring", 4 }, { "cross", 5 } };
  config.modalities = { "voc" };
  config.image_dimensions = 2;
  config.image_channels = 3;
  config.channel_mean = { 124, 116, 104 };
  config.channel_std = { 58, 57, 57 };
  config.patch_size = 32;
  config.margin_mm = 6;
  config.decoder_channels = 32;
  config.decoder_low_level_projection = 16;
  config.coarse_spacing_mm = { 4, 4, 4 };
  config.threshold = 0.0;
  agcl::AGCLModel model(config);
  agcl::Picture   picture;
  picture.pixels = torch::randint(0, 256, { 3, state.range(1), state.range(0) }, torch::kFloat);
  int64_t patches = 0;
  for (auto _ : state)
  {
    const auto result = agcl::SegmentPicture(model, picture, device);
    patches = result.patches;
    benchmark::DoNotOptimize(result.labels.data_ptr());
  }
  state.counters["patches"] = static_cast<double>(patches);
}

BENCHMARK(BM_ContrastiveLossForwardBackward)->Arg(256)->Arg(512)->Arg(1024)->Arg(4096)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EncoderForwardBackward)
  ->Args({ 18, 16, 64 })
  ->Args({ 18, 16, 128 })
  ->Args({ 50, 64, 64 })
  ->Args({ 50, 64, 128 })
  ->Unit(benchmark::kMillisecond)
  ->MinTime(2.0);
BENCHMARK(BM_PairedAugmentation)->Arg(64)->Arg(128)->Unit(benchmark::kMillisecond);
// The patch stages between the networks (agcl/PatchStages.h) on a whole CT, slab by slab, as
// AGCLSegmentationFilter runs them with TensorPatchStages (always on CUDA): a 512 x 512 x
// `slices` volume at 0.7 x 0.7 x 2.5 mm with 12 ellipsoidal organs (attention masks), slabs of
// 16 slices; per slab the query patches (64 x 64 at the voxel spacing, overlap 0.25, tiles over
// each organ's box on each slice) are sampled, a stand-in for the networks gives probabilities
// (attention x sigmoid of the CT channel: two element-wise operations), and the fusion and the
// label decision run; the labels come back to the host. Timed: the tensor functions and the
// transfers; the tile plan (host arithmetic, as PlanPatches) is made before the loop.
// Args: slices, 1 = the coarse vote in the fusion (a 4 mm grid).
void
BM_PatchStagesVolume(benchmark::State & state)
{
  const torch::Device device = BenchDevice();
  const int64_t       X = 512, Y = 512, Z = state.range(0), P = 64, slab = 16, O = 12;
  torch::manual_seed(0);
  const torch::Tensor        ct = (torch::rand({ Z, Y, X }) * 400.0 - 150.0).to(device);
  const torch::Tensor        z = torch::arange(Z, torch::kFloat).view({ -1, 1, 1 });
  const torch::Tensor        y = torch::arange(Y, torch::kFloat).view({ 1, -1, 1 });
  const torch::Tensor        x = torch::arange(X, torch::kFloat).view({ 1, 1, -1 });
  std::vector<torch::Tensor> organs;
  for (int64_t o = 0; o < O; ++o)
  {
    // Centres on a 4 x 3 grid across the body, radii 25-70 voxels in-plane, 8-30 slices.
    const double cx = 110 + 95 * (o % 4), cy = 150 + 105 * (o / 4), cz = Z * (0.3 + 0.04 * o);
    const double rx = 25 + 4 * o, ry = 30 + 3 * o, rz = std::max<double>(4, Z * (0.07 + 0.015 * o));
    organs.push_back(((x - cx) / rx).square() + ((y - cy) / ry).square() + ((z - cz) / rz).square() <= 1.0);
  }
  const torch::Tensor attention = torch::stack(organs); // [O, Z, Y, X] bool, host
  struct Slab
  {
    int64_t                       k0, k1;
    std::vector<agcl::PatchFrame> frames;
    std::vector<agcl::VoxelBox>   boxes;
    torch::Tensor                 masks; // on the device
  };
  std::vector<Slab> slabs;
  int64_t           patches = 0;
  for (int64_t k0 = 0; k0 < Z; k0 += slab)
  {
    Slab s;
    s.k0 = k0;
    s.k1 = std::min(Z, k0 + slab);
    const torch::Tensor part = attention.slice(1, s.k0, s.k1);
    s.boxes.resize(O);
    for (int64_t o = 0; o < O; ++o)
    {
      const torch::Tensor where = part[o].nonzero(); // [n, 3] (z, y, x)
      if (where.size(0) == 0)
        continue;
      const auto lo = std::get<0>(where.min(0)), hi = std::get<0>(where.max(0));
      for (int i = 0; i < 3; ++i)
      {
        s.boxes[o].start[i] = lo[2 - i].item<int64_t>() + (i == 2 ? s.k0 : 0);
        s.boxes[o].size[i] = hi[2 - i].item<int64_t>() - lo[2 - i].item<int64_t>() + 1;
      }
      // Tiles on each slice of the box (the box's extent; the filter uses each slice's own).
      const int64_t step = static_cast<int64_t>(P * 0.75);
      for (int64_t k = s.boxes[o].start[2]; k < s.boxes[o].start[2] + s.boxes[o].size[2]; ++k)
        for (int64_t ty = s.boxes[o].start[1];; ty += step)
        {
          for (int64_t tx = s.boxes[o].start[0];; tx += step)
          {
            agcl::PatchFrame f;
            f.first = { static_cast<double>(tx), static_cast<double>(ty), static_cast<double>(k) };
            f.column = { 1.0, 0.0, 0.0 };
            f.row = { 0.0, 1.0, 0.0 };
            f.organ = o;
            f.planar = true;
            s.frames.push_back(f);
            if (tx + P >= s.boxes[o].start[0] + s.boxes[o].size[0])
              break;
          }
          if (ty + P >= s.boxes[o].start[1] + s.boxes[o].size[1])
            break;
        }
    }
    s.masks = part.to(device);
    patches += static_cast<int64_t>(s.frames.size());
    slabs.push_back(std::move(s));
  }
  std::vector<agcl::CoarseVote> votes;
  if (state.range(1) != 0)
  {
    // A 4 mm coarse grid: 90 x 90 x (Z x 2.5 / 4) voxels of random probabilities per organ.
    const int64_t Zc = std::max<int64_t>(1, Z * 5 / 8);
    for (int64_t o = 0; o < O; ++o)
    {
      agcl::CoarseVote v;
      v.probability = torch::rand({ Zc, 90, 90 }).to(device);
      v.toCoarse = {
        { { 0.7 / 4, 0, 0, 0.7 / 8 - 0.5 }, { 0, 0.7 / 4, 0, 0.7 / 8 - 0.5 }, { 0, 0, 2.5 / 4, 2.5 / 8 - 0.5 } }
      };
      votes.push_back(v);
    }
  }
  agcl::FusionOptions options;
  options.coarseWeight = votes.empty() ? 0.0 : 0.6;
  const std::vector<double> thresholds(O, 0.5);
  for (auto _ : state)
  {
    for (const Slab & s : slabs)
    {
      const torch::Tensor images =
        agcl::SampleQueryPatches(ct.slice(0, s.k0, s.k1), s.masks, s.frames, P, -160.0, 240.0, { 0, 0, s.k0 });
      const torch::Tensor probability =
        (images.select(1, 1) * torch::sigmoid(images.select(1, 0) * 8.0 - 4.0)).unsqueeze(1);
      const auto scores = agcl::FusePatchScores(probability, s.frames, s.boxes, options, votes);
      const auto decision = agcl::DecideLabels(scores, s.boxes, s.masks, thresholds, { 0, 0, s.k0 });
      benchmark::DoNotOptimize(decision.labels.cpu().data_ptr());
    }
    Sync(device);
  }
  state.counters["patches"] = static_cast<double>(patches);
  state.counters["slabs"] = static_cast<double>(slabs.size());
}

BENCHMARK(BM_PatchInference)
  ->Args({ 18, 16, 64, 64, 4 })    // the CPU-sized model
  ->Args({ 18, 16, 64, 32, 4 })    // models/phantom-demo.json with DeepLabv3+'s stride-4 logits
  ->Args({ 18, 16, 64, 32, 2 })    // models/phantom-demo.json (logits at stride 2)
  ->Args({ 50, 64, 128, 256, 4 })  // the paper's sizes
  ->Args({ 101, 64, 128, 256, 4 }) // the paper's largest encoder
  ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CoarseNetworkWindow)->Arg(8)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GrowByMargin)
  ->Args({ 10, 1 })
  ->Args({ 10, 2 })
  ->Args({ 10, 0 })
  ->Args({ 5, 1 })
  ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ResampleToCoarseGrid)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PatchStagesVolume)
  ->Args({ 120, 0 })
  ->Args({ 120, 1 })
  ->Args({ 64, 0 })
  ->Args({ 256, 0 })
  ->Unit(benchmark::kMillisecond)
  ->UseRealTime();
BENCHMARK(BM_Stage1TrainingStep)
  ->Args({ 1, 1 })
  ->Args({ 0, 1 })
  ->Args({ 1, 0 })
  ->Args({ 0, 0 })
  ->Unit(benchmark::kMillisecond)
  ->MinTime(3.0);
BENCHMARK(BM_AdamStep)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SegmentPicture)->Args({ 160, 120 })->Args({ 500, 375 })->Unit(benchmark::kMillisecond);

int
main(int argc, char ** argv)
{
  agcl::ConfigureThreads();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
  {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
