/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Image <-> tensor bridge: zero-copy view vs copies, on a CT-sized volume.
// Run: build/benchmarks/agclBridgeBenchmark (results in Documentation/performance.md).
#include "itkImageToTensor.h"
#include "itkTensorToImage.h"

#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

namespace {
template <typename TPixel>
typename itk::Image<TPixel, 3>::Pointer
MakeImage(unsigned long n, unsigned long z)
{
  auto image = itk::Image<TPixel, 3>::New();
  image->SetRegions(typename itk::Image<TPixel, 3>::SizeType{ { n, n, z } });
  image->Allocate();
  image->FillBuffer(TPixel(40));
  return image;
}

// Argument: in-plane size; 64 slices.
void
BM_ViewShort(benchmark::State & state)
{
  auto image = MakeImage<short>(state.range(0), 64);
  for (auto _ : state)
  {
    at::Tensor view = itk::ImageToTensor<itk::Image<short, 3>>::View(image);
    benchmark::DoNotOptimize(view.data_ptr());
  }
  state.SetBytesProcessed(state.iterations() * image->GetLargestPossibleRegion().GetNumberOfPixels() * sizeof(short));
}

void
BM_CopyShort(benchmark::State & state)
{
  auto image = MakeImage<short>(state.range(0), 64);
  for (auto _ : state)
  {
    at::Tensor copy = itk::ImageToTensor<itk::Image<short, 3>>::Copy(image);
    benchmark::DoNotOptimize(copy.data_ptr());
  }
  state.SetBytesProcessed(state.iterations() * image->GetLargestPossibleRegion().GetNumberOfPixels() * sizeof(short));
}

void
BM_CopyUnsignedShortConverted(benchmark::State & state)
{
  auto image = MakeImage<unsigned short>(state.range(0), 64);
  for (auto _ : state)
  {
    at::Tensor copy = itk::ImageToTensor<itk::Image<unsigned short, 3>>::Copy(image);
    benchmark::DoNotOptimize(copy.data_ptr());
  }
  state.SetBytesProcessed(state.iterations() * image->GetLargestPossibleRegion().GetNumberOfPixels() *
                          sizeof(unsigned short));
}

void
BM_TensorToImageFloat(benchmark::State & state)
{
  auto             reference = MakeImage<float>(state.range(0), 64);
  const at::Tensor tensor = at::ones({ 64, state.range(0), state.range(0) }, at::kFloat);
  for (auto _ : state)
  {
    auto image = itk::TensorToImage<itk::Image<float, 3>>::Convert(tensor, reference);
    benchmark::DoNotOptimize(image->GetBufferPointer());
  }
  state.SetBytesProcessed(state.iterations() * tensor.numel() * sizeof(float));
}
} // namespace

BENCHMARK(BM_ViewShort)->Arg(128)->Arg(512);
BENCHMARK(BM_CopyShort)->Arg(128)->Arg(512)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CopyUnsignedShortConverted)->Arg(128)->Arg(512)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TensorToImageFloat)->Arg(128)->Arg(512)->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
