/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Whole-volume inference with AGCLSegmentationFilter on phantom volumes, split by stage, with
// the CPU-sized model (ResNet-18 at width 16, 64x64 patches; untrained weights: the time of a
// network does not depend on its weights).
//
// The attention regions a trained coarse network would give are emulated with the phantom's own
// label map (SetCoarseLabelMap: organ + 10 mm), so that the number of patches is realistic; the
// coarse network is timed separately on the same volume (counter coarse_s), and total_s adds it.
// An untrained coarse network would give random attention (all organs everywhere), and so
// several times more patches than a real model.
//
// Run: build/benchmarks/agclSegmentationBenchmark (results in Documentation/performance.md).
// Counters: seconds per stage, patches, non_network = (attention + sampling + fusion +
// post-processing) / total, peak_MiB = peak resident memory during the run (the process's
// peak is reset before it), input_MiB and output_MiB.
#include "itkAGCLSegmentationFilter.h"
#include "itkAbdominalPhantomImageSource.h"
#include "itkImageRegionIteratorWithIndex.h"
#include "itkLabelBoundingBoxes.h"

#include "agcl/AGCLModel.h"
#include "agcl/Threading.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <fstream>
#include <map>
#include <string>

namespace {
using Source = itk::AbdominalPhantomImageSource;
using CT = Source::CTImageType;
using Labels = Source::LabelImageType;

double
PeakMiB()
{
  std::ifstream in("/proc/self/status");
  std::string   line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0)
      return std::stod(line.substr(6)) / 1024.0;
  return -1.0;
}

// The model of a run: 0 the CPU-sized one (the defaults: ResNet-18 at width 16, 64 x 64 patches,
// decoder 64 channels), 1 the paper's sizes (ResNet-50 at width 64, 128 x 128 patches, decoder
// 256 channels with DeepLabv3+'s 48-channel low-level projection).
itk::AGCLModelObject::Pointer
BenchmarkModel(int64_t which)
{
  static std::map<int64_t, itk::AGCLModelObject::Pointer> models;
  auto &                                                  model = models[which];
  if (!model)
  {
    torch::manual_seed(1);
    agcl::ModelConfig config;
    if (which == 1)
    {
      config.encoder_depth = 50;
      config.encoder_width = 64;
      config.patch_size = 128;
      config.decoder_channels = 256;
      config.decoder_low_level_projection = 48;
    }
    model = itk::AGCLModelObject::New();
    model->SetModel(std::make_shared<agcl::AGCLModel>(config));
  }
  return model;
}

// Arguments: in-plane size, slices, TensorStages (1: the core's tensor attention, the default;
// 0: the ITK path), TensorPatchStages (1: sampling, fusion and decision as the core's tensor
// functions, what a CUDA device runs, here on LibTorch's CPU kernels; 0: the ITK loops, the CPU
// default), precision (0: float32, 1: bfloat16 autocast for the networks), model (0: CPU-sized,
// 1: the paper's sizes; see BenchmarkModel).
void
BM_Segment(benchmark::State & state)
{
  agcl::ConfigureThreads(0);
  auto             source = Source::New();
  Source::SizeType size{ { static_cast<unsigned long>(state.range(0)),
                           static_cast<unsigned long>(state.range(0)),
                           static_cast<unsigned long>(state.range(1)) } };
  source->SetSize(size);
  source->Update();
  CT::Pointer     ct = source->GetOutput();
  Labels::Pointer labels = source->GetLabelOutput();
  ct->DisconnectPipeline();
  labels->DisconnectPipeline();
  source = nullptr;
  auto model = BenchmarkModel(state.range(5));

  std::map<std::string, double> seconds;
  double                        total = 0, peak = 0;
  uint64_t                      patches = 0;
  for (auto _ : state)
  {
    std::ofstream("/proc/self/clear_refs") << "5";
    const auto   start = std::chrono::steady_clock::now();
    auto         coarse = itk::CoarseAttentionFilter<CT, Labels>::ComputeCoarseLabelMap(ct, model, "cpu");
    const double coarseSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    coarse = nullptr;
    auto segment = itk::AGCLSegmentationFilter<CT, Labels>::New();
    segment->SetInput(ct);
    segment->SetCoarseLabelMap(labels);
    segment->SetModel(model);
    segment->SetTensorStages(state.range(2) != 0);
    segment->SetTensorPatchStages(state.range(3) != 0);
    segment->SetPrecision(state.range(4) != 0 ? "bfloat16" : "float32");
    segment->Update();
    total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    seconds = segment->GetStageSeconds();
    seconds["coarse"] = coarseSeconds;
    patches = segment->GetNumberOfPatches();
    peak = PeakMiB();
    benchmark::DoNotOptimize(segment->GetOutput()->GetBufferPointer());
  }
  for (const auto & [stage, value] : seconds)
    state.counters[stage + "_s"] = value;
  state.counters["total_s"] = total;
  state.counters["patches"] = static_cast<double>(patches);
  state.counters["non_network"] =
    (seconds["attention"] + seconds["sampling"] + seconds["fusion"] + seconds["postprocessing"]) / total;
  state.counters["peak_MiB"] = peak;
  const double voxels = static_cast<double>(ct->GetLargestPossibleRegion().GetNumberOfPixels());
  state.counters["input_MiB"] = voxels * sizeof(CT::PixelType) / 1048576.0;
  state.counters["output_MiB"] = voxels * sizeof(Labels::PixelType) / 1048576.0;
}
BENCHMARK(BM_Segment)
  ->Args({ 256, 64, 1, 0, 0, 0 })
  ->Args({ 512, 120, 1, 0, 0, 0 })
  ->Args({ 512, 120, 0, 0, 0, 0 })
  ->Args({ 512, 120, 1, 1, 0, 0 })
  ->Args({ 512, 120, 1, 0, 1, 0 })
  // growth with the number of slices (same field of view, thinner slices), and the size MONAI quotes
  ->Args({ 512, 64, 1, 0, 0, 0 })
  ->Args({ 512, 128, 1, 0, 0, 0 })
  ->Args({ 512, 256, 1, 0, 0, 0 })
  ->Args({ 512, 397, 1, 0, 0, 0 })
  ->Args({ 512, 397, 0, 0, 0, 0 })
  // the paper's model sizes
  ->Args({ 256, 64, 1, 0, 0, 1 })
  ->Args({ 512, 120, 1, 0, 0, 1 })
  ->Iterations(1)
  ->Unit(benchmark::kSecond)
  ->UseRealTime();

// The ITK side of agclCoreBenchmark's BM_GrowByMargin and BM_ResampleToCoarseGrid (issue 17's
// tensor stages against today's ITK ones, on the same grid): 512 x 512 x 120 at 0.7 x 0.7 x
// 2.5 mm, an ellipsoid of radii 100 x 70 x 50 mm grown by `arg` mm with CoarseAttentionFilter's
// distance map; the CT onto the 4 mm coarse grid.
Labels::Pointer
EllipsoidLabels()
{
  auto             labels = Labels::New();
  Labels::SizeType size{ { 512, 512, 120 } };
  labels->SetRegions(size);
  const double spacing[] = { 0.7, 0.7, 2.5 };
  labels->SetSpacing(spacing);
  labels->Allocate();
  for (itk::ImageRegionIteratorWithIndex<Labels> it(labels, labels->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
  {
    const auto   i = it.GetIndex();
    const double x = i[0] * 0.7 - 150.0, y = i[1] * 0.7 - 179.0, z = i[2] * 2.5 - 150.0;
    it.Set((x / 100.0) * (x / 100.0) + (y / 70.0) * (y / 70.0) + (z / 50.0) * (z / 50.0) <= 1.0 ? 1 : 0);
  }
  return labels;
}

void
BM_AttentionMapITK(benchmark::State & state)
{
  agcl::ConfigureThreads(0);
  const Labels::Pointer labels = EllipsoidLabels();
  const auto            box = itk::LabelBoundingBoxes(labels.GetPointer(), labels->GetLargestPossibleRegion()).at(1);
  auto                  attention = Labels::New();
  attention->CopyInformation(labels);
  attention->SetRegions(labels->GetLargestPossibleRegion());
  attention->Allocate();
  for (auto _ : state)
  {
    attention->FillBuffer(0);
    itk::CoarseAttentionFilter<CT, Labels>::ComputeAttentionMap(
      labels, 1, box, static_cast<double>(state.range(0)), attention);
  }
}
BENCHMARK(BM_AttentionMapITK)->Arg(10)->Arg(5)->Unit(benchmark::kMillisecond);

void
BM_ResampleToCoarseGridITK(benchmark::State & state)
{
  agcl::ConfigureThreads(0);
  auto         ct = CT::New();
  CT::SizeType size{ { 512, 512, 120 } };
  const double spacing[] = { 0.7, 0.7, 2.5 };
  ct->SetRegions(size);
  ct->SetSpacing(spacing);
  ct->Allocate();
  ct->FillBuffer(40);
  agcl::ModelConfig config;
  for (auto _ : state)
  {
    benchmark::DoNotOptimize(itk::CoarseAttentionFilter<CT, Labels>::ResampleToCoarseGrid(ct, config));
  }
}
BENCHMARK(BM_ResampleToCoarseGridITK)->Unit(benchmark::kMillisecond);

// Post-processing (each organ's largest component, holes filled) on the phantom's 512 x 512 x
// 120 label map made noisy the way a network's output is: per organ 40 stray balls of the
// organ's label (radius 1-3 voxels) on background within 30 voxels of its box, and 20 holes
// (radius 1-3) punched into the organ. Fixed seed: every iteration gets the same input.
Labels::Pointer
NoisyPhantomLabels()
{
  auto             source = Source::New();
  Source::SizeType size{ { 512, 512, 120 } };
  source->SetSize(size);
  source->Update();
  Labels::Pointer labels = source->GetLabelOutput();
  labels->DisconnectPipeline();
  const auto   region = labels->GetLargestPossibleRegion();
  const auto   boxes = itk::LabelBoundingBoxes(labels.GetPointer(), region);
  std::mt19937 random(7);
  auto         uniform = [&](long lo, long hi) { return std::uniform_int_distribution<long>(lo, hi)(random); };
  auto         ball = [&](const Labels::IndexType & centre, long radius, Labels::PixelType from, Labels::PixelType to) {
    for (long z = -radius; z <= radius; ++z)
      for (long y = -radius; y <= radius; ++y)
        for (long x = -radius; x <= radius; ++x)
        {
          Labels::IndexType i = centre;
          i[0] += x;
          i[1] += y;
          i[2] += z;
          if (x * x + y * y + z * z <= radius * radius && region.IsInside(i) &&
              (labels->GetPixel(i) == from || from == to))
            labels->SetPixel(i, to);
        }
  };
  for (const auto & [organ, box] : boxes)
  {
    for (int k = 0; k < 60; ++k)
    {
      Labels::IndexType centre;
      for (unsigned d = 0; d < 3; ++d)
      {
        const long grow = k < 40 ? 30 : 0;
        centre[d] = uniform(box.GetIndex(d) - grow, box.GetIndex(d) + static_cast<long>(box.GetSize(d)) - 1 + grow);
      }
      if (!region.IsInside(centre))
        continue;
      if (k < 40) // a stray ball of the organ on background
        ball(centre, uniform(1, 3), 0, organ);
      else if (labels->GetPixel(centre) == organ) // a hole inside the organ
        ball(centre, uniform(1, 3), organ, 0);
    }
  }
  return labels;
}

void
BM_PostProcessing(benchmark::State & state)
{
  agcl::ConfigureThreads(0);
  const Labels::Pointer          noisy = NoisyPhantomLabels();
  std::vector<Labels::PixelType> organs;
  for (const auto & entry : itk::LabelBoundingBoxes(noisy.GetPointer(), noisy->GetLargestPossibleRegion()))
    organs.push_back(entry.first);
  auto labels = Labels::New();
  labels->CopyInformation(noisy);
  labels->SetRegions(noisy->GetLargestPossibleRegion());
  labels->Allocate();
  const size_t n = noisy->GetLargestPossibleRegion().GetNumberOfPixels();
  for (auto _ : state)
  {
    state.PauseTiming();
    std::copy_n(noisy->GetBufferPointer(), n, labels->GetBufferPointer());
    state.ResumeTiming();
    itk::LabelFusionFilter<Labels>::KeepLargestComponentsAndFillHoles(labels, organs);
  }
}
BENCHMARK(BM_PostProcessing)->Unit(benchmark::kMillisecond)->UseRealTime();
} // namespace

BENCHMARK_MAIN();
