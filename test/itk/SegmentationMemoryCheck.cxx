/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Memory of AGCLSegmentationFilter as the volume grows (issue: "peak memory minus the sizes of
// the input, output and accumulator volumes is within 20% at 64 and at 128 slices").
//
// Each size runs in its own child process (peak RSS is per process): a phantom of 128 x 128 x S
// voxels (2.5 mm slices, so the volume grows along z), a warm-up segmentation of a small volume
// (LibTorch's thread pools and kernels' workspaces are allocated once per process), then the
// peak RSS is reset (/proc/self/clear_refs) and the segmentation of the volume measured.
// Reported per size:
//   peak_minus_volumes = peak RSS - input bytes - output bytes  (the measure; the filter
//                        keeps no per-organ volume-sized accumulators, so there are none to subtract)
//   growth             = peak RSS - RSS before Update - output bytes (what the run itself added)
// Each size is measured twice and the smaller figures are kept: the peak of one run varies by
// up to ~10% with the timing of the two threads' allocations (seen on the 2-core machine).
// The check fails when either measure at 128 slices differs from 64 slices by more than 20%.
#include "itkAGCLSegmentationFilter.h"
#include "itkAbdominalPhantomImageSource.h"

#include "agcl/AGCLModel.h"
#include "agcl/Threading.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace {
using Source = itk::AbdominalPhantomImageSource;
using CT = Source::CTImageType;
using Labels = Source::LabelImageType;

long
StatusKiB(const std::string & key)
{
  std::ifstream in("/proc/self/status");
  std::string   line;
  while (std::getline(in, line))
  {
    if (line.rfind(key + ":", 0) == 0)
    {
      return std::stol(line.substr(key.size() + 1));
    }
  }
  return -1;
}

CT::Pointer
Phantom(unsigned long slices)
{
  auto                    source = Source::New();
  Source::SizeType        size{ { 128, 128, slices } };
  Source::FieldOfViewType fov;
  fov[0] = 350.0;
  fov[1] = 350.0;
  fov[2] = 2.5 * slices;
  source->SetSize(size);
  source->SetFieldOfView(fov);
  source->Update();
  CT::Pointer ct = source->GetOutput();
  ct->DisconnectPipeline();
  return ct;
}

void
Segment(const CT * ct, itk::AGCLModelObject * model)
{
  auto segment = itk::AGCLSegmentationFilter<CT, Labels>::New();
  segment->SetInput(ct);
  segment->SetModel(model);
  segment->Update();
}

// Child: measures one size and writes "input output before peak patches" (bytes) to `fd`.
int
Measure(unsigned long slices, int fd)
{
  agcl::ConfigureThreads(0);
  torch::manual_seed(1);
  auto model = itk::AGCLModelObject::New();
  model->SetModel(std::make_shared<agcl::AGCLModel>(agcl::ModelConfig{})); // the CPU-sized default
  Segment(Phantom(24), model);                                             // warm-up
  const CT::Pointer ct = Phantom(slices);
  std::ofstream("/proc/self/clear_refs") << "5"; // resets the peak RSS to the current RSS
  const long before = StatusKiB("VmRSS");
  auto       segment = itk::AGCLSegmentationFilter<CT, Labels>::New();
  segment->SetInput(ct);
  segment->SetModel(model);
  segment->Update();
  const long         peak = StatusKiB("VmHWM");
  const long         voxels = static_cast<long>(ct->GetLargestPossibleRegion().GetNumberOfPixels());
  std::ostringstream os;
  os << voxels * static_cast<long>(sizeof(CT::PixelType)) << " "
     << voxels * static_cast<long>(sizeof(Labels::PixelType)) << " " << before * 1024 << " " << peak * 1024 << " "
     << segment->GetNumberOfPatches() << "\n";
  const std::string text = os.str();
  return write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) ? 0 : 1;
}
} // namespace

int
main()
{
  double measures[2][2] = {};
  int    row = 0;
  for (const unsigned long slices : { 64ul, 128ul })
  {
    long input = 0, output = 0, before = 0, peak = 0, patches = 0;
    measures[row][0] = measures[row][1] = 1e300;
    for (int repeat = 0; repeat < 2; ++repeat)
    {
      int pipeFd[2];
      if (pipe(pipeFd) != 0)
        return 2;
      const pid_t child = fork();
      if (child == 0)
      {
        close(pipeFd[0]);
        _exit(Measure(slices, pipeFd[1]));
      }
      close(pipeFd[1]);
      char       buffer[256] = {};
      const auto n = read(pipeFd[0], buffer, sizeof(buffer) - 1);
      int        status = 0;
      waitpid(child, &status, 0);
      close(pipeFd[0]);
      if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
          std::sscanf(buffer, "%ld %ld %ld %ld %ld", &input, &output, &before, &peak, &patches) != 5)
      {
        std::cerr << "the measurement at " << slices << " slices failed\n";
        return 2;
      }
      measures[row][0] = std::min(measures[row][0], static_cast<double>(peak - input - output));
      measures[row][1] = std::min(measures[row][1], static_cast<double>(peak - before - output));
      std::printf(
        "{\"slices\": %lu, \"run\": %d, \"patches\": %ld, \"input_MiB\": %.1f, \"output_MiB\": %.1f, "
        "\"rss_before_MiB\": %.1f, \"peak_MiB\": %.1f, \"peak_minus_volumes_MiB\": %.1f, \"growth_MiB\": %.1f}\n",
        slices,
        repeat,
        patches,
        input / 1048576.0,
        output / 1048576.0,
        before / 1048576.0,
        peak / 1048576.0,
        (peak - input - output) / 1048576.0,
        (peak - before - output) / 1048576.0);
    }
    ++row;
  }
  int          failures = 0;
  const char * names[2] = { "peak minus input and output", "growth during Update minus output" };
  for (int m = 0; m < 2; ++m)
  {
    const double ratio = measures[1][m] / measures[0][m];
    std::printf("%s: 128 / 64 slices = %.3f\n", names[m], ratio);
    if (!(std::abs(ratio - 1.0) <= 0.2))
    {
      std::printf("FAILED: %s grows by more than 20%% from 64 to 128 slices\n", names[m]);
      ++failures;
    }
  }
  return failures == 0 ? 0 : 1;
}
