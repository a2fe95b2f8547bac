/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// The committed phantom tensors (test/data/phantom-tensors/, read by the core's
// PatchStagesTest.TheCommittedPhantomGivesTheITKLoopsLabels, which a GPU machine without ITK
// runs on CUDA): this test makes them with the ITK filters and checks that the committed files
// are what the ITK path gives today. AGCL_WRITE_PHANTOM_TENSORS=<folder> writes them there.
#include "itkAbdominalPhantomImageSource.h"
#include "itkCoarseAttentionFilter.h"
#include "itkLabelBoundingBoxes.h"
#include "itkLabelFusionFilter.h"
#include "itkQueryPatchSamplerFilter.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

namespace {
namespace fs = std::filesystem;
using CT = itk::Image<short, 3>; // the phantom's pixel type
using Labels = itk::Image<unsigned char, 3>;

std::string
Bytes(const void * data, size_t size)
{
  return std::string(static_cast<const char *>(data), size);
}

std::string
ReadFile(const fs::path & path)
{
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

nlohmann::json
FramesJson(const std::vector<agcl::PatchFrame> & frames)
{
  nlohmann::json list = nlohmann::json::array();
  for (const auto & f : frames)
    list.push_back(
      { { "first", f.first }, { "column", f.column }, { "row", f.row }, { "organ", f.organ }, { "planar", f.planar } });
  return list;
}

TEST(PhantomTensors, TheCommittedFilesAreWhatTheITKPathGives)
{
  // A 48 x 48 x 20 phantom; four of its organs; attention = the organ grown by 8 mm;
  // query patches of 16 pixels at 1.3 voxel spacings (interpolated values, sub-pixels in the
  // fusion); a stand-in network: probability = attention x sigmoid(8 CT - 4).
  auto source = itk::AbdominalPhantomImageSource::New();
  source->SetSize({ { 48, 48, 20 } });
  source->SetSeed(8);
  source->Update();
  const CT *     ct = source->GetOutput();
  const Labels * labels = source->GetLabelOutput();
  const auto     region = ct->GetLargestPossibleRegion();
  const auto     boxesOfLabels = itk::LabelBoundingBoxes(labels, region);
  // The four organs with the largest boxes (liver, stomach, ... at this size), in label order.
  std::vector<unsigned char> organs;
  for (const auto & entry : boxesOfLabels)
    if (entry.first != 0)
      organs.push_back(entry.first);
  ASSERT_GE(organs.size(), 4u);
  std::stable_sort(organs.begin(), organs.end(), [&](unsigned char a, unsigned char b) {
    return boxesOfLabels.at(a).GetNumberOfPixels() > boxesOfLabels.at(b).GetNumberOfPixels();
  });
  organs.resize(4);
  std::sort(organs.begin(), organs.end());

  using Coarse = itk::CoarseAttentionFilter<CT, Labels>;
  using Sampler = itk::QueryPatchSamplerFilter<CT, Labels>;
  using Fusion = itk::LabelFusionFilter<Labels>;
  std::vector<Labels::Pointer> attention;
  auto                         sampler = Sampler::New();
  sampler->SetInput(ct);
  for (const unsigned char organ : organs)
  {
    auto map = Labels::New();
    map->CopyInformation(ct);
    map->SetRegions(region);
    map->Allocate();
    map->FillBuffer(0);
    Coarse::ComputeAttentionMap(labels, organ, boxesOfLabels.at(organ), 8.0, map);
    attention.push_back(map);
    sampler->SetAttentionMap(organ, map);
  }
  const double windowLow = -160.0, windowHigh = 240.0;
  sampler->SetPatchSize(16);
  sampler->SetPatchSpacingMM(1.3 * ct->GetSpacing()[0]);
  sampler->SetOverlap(0.25);
  sampler->SetWindowLow(windowLow);
  sampler->SetWindowHigh(windowHigh);
  sampler->Update();
  const auto       plan = sampler->PlanPatches();
  const at::Tensor images = sampler->GetOutput()->GetTensor("image");
  ASSERT_GT(images.size(0), 20);
  const at::Tensor probability = (images.select(1, 1) * at::sigmoid(images.select(1, 0) * 8.0 - 4.0)).unsqueeze(1);
  auto             patches = itk::TensorDataObject::New();
  patches->SetTensor("probability", probability);
  patches->SetMetadata(plan.metadata);
  auto fusion = Fusion::New();
  fusion->SetPatches(patches);
  fusion->SetReferenceImage(ct);
  for (size_t o = 0; o < organs.size(); ++o)
    fusion->SetAttentionMap(organs[o], attention[o]);
  fusion->SetThreshold(0.5);
  fusion->GaussianWeightingOn();
  fusion->PostProcessingOff();
  fusion->Update();

  // The files.
  const auto   size = region.GetSize();
  const size_t voxels = region.GetNumberOfPixels();
  std::string  attentionBytes;
  for (const auto & map : attention)
    attentionBytes += Bytes(map->GetBufferPointer(), voxels);
  std::vector<unsigned char> reference(voxels);
  const unsigned char *      fused = fusion->GetOutput()->GetBufferPointer();
  long                       labelled = 0;
  for (size_t v = 0; v < voxels; ++v)
  {
    // Organ positions + 1 (0: background), as agcl::DecideLabels gives them.
    reference[v] = 0;
    for (size_t o = 0; o < organs.size(); ++o)
      if (fused[v] == organs[o])
        reference[v] = static_cast<unsigned char>(o + 1);
    labelled += reference[v] != 0;
  }
  ASSERT_GT(labelled, 500);
  std::vector<agcl::PatchFrame> fusionFrames = Fusion::PatchFrames(*ct, plan.metadata);
  for (size_t n = 0; n < fusionFrames.size(); ++n)
    fusionFrames[n].organ = plan.frames[n].organ;
  nlohmann::json boxes = nlohmann::json::array();
  for (const auto & map : attention)
  {
    const auto found = itk::LabelBoundingBoxes(map.GetPointer(), region, true);
    ASSERT_FALSE(found.empty());
    const auto & b = found.begin()->second;
    boxes.push_back({ { "start", { b.GetIndex(0), b.GetIndex(1), b.GetIndex(2) } },
                      { "size", { b.GetSize(0), b.GetSize(1), b.GetSize(2) } } });
  }
  nlohmann::json meta = {
    { "about", "made by test/itk/PhantomTensorsTest.cxx (AGCL_WRITE_PHANTOM_TENSORS=<folder>)" },
    { "size_zyx", { size[2], size[1], size[0] } },
    { "organs", organs },
    { "patch_size", 16 },
    { "window", { windowLow, windowHigh } },
    { "threshold", 0.5 },
    { "gaussian_weighting", true },
    { "subdivisions", { Fusion::Subdivisions(fusionFrames[0].column), Fusion::Subdivisions(fusionFrames[0].row) } },
    { "boxes", boxes },
    { "sampling_frames", FramesJson(plan.frames) },
    { "fusion_frames", FramesJson(fusionFrames) },
  };
  const std::map<std::string, std::string> files{
    { "ct.i16", Bytes(ct->GetBufferPointer(), voxels * sizeof(short)) },
    { "attention.u8", attentionBytes },
    { "labels.u8", Bytes(reference.data(), voxels) },
    { "meta.json", meta.dump(1) + "\n" },
  };
  if (const char * out = std::getenv("AGCL_WRITE_PHANTOM_TENSORS"))
  {
    fs::create_directories(out);
    for (const auto & [name, bytes] : files)
      std::ofstream(fs::path(out) / name, std::ios::binary) << bytes;
  }
  // Voxels exactly; the frames to 1e-12 voxel (their last bits may depend on the machine's libm).
  const fs::path committed = fs::path(AGCL_TEST_DATA_DIR) / "phantom-tensors";
  for (const auto & [name, bytes] : files)
  {
    const std::string text = ReadFile(committed / name);
    if (name == "labels.u8")
    {
      // The stand-in network's sigmoid may round differently with another CPU's vector kernels:
      // a voxel whose score is that close to the threshold may flip (< 0.01 % allowed).
      ASSERT_EQ(text.size(), bytes.size()) << committed / name;
      size_t differing = 0;
      for (size_t v = 0; v < bytes.size(); ++v)
        differing += text[v] != bytes[v];
      EXPECT_LT(differing, std::max<size_t>(1, voxels / 10000)) << committed / name << ": " << differing << " voxels";
      continue;
    }
    if (name != "meta.json")
    {
      EXPECT_TRUE(text == bytes) << committed / name
                                 << " differs from what the ITK path gives (regenerate: AGCL_WRITE_PHANTOM_TENSORS)";
      continue;
    }
    const nlohmann::json read = nlohmann::json::parse(text);
    for (const char * key : { "size_zyx", "organs", "patch_size", "window", "threshold", "subdivisions", "boxes" })
      EXPECT_EQ(read.at(key), meta.at(key)) << key;
    for (const char * key : { "sampling_frames", "fusion_frames" })
    {
      ASSERT_EQ(read.at(key).size(), meta.at(key).size()) << key;
      for (size_t n = 0; n < meta.at(key).size(); ++n)
      {
        const auto & a = read.at(key)[n];
        const auto & b = meta.at(key)[n];
        EXPECT_EQ(a.at("organ"), b.at("organ"));
        EXPECT_EQ(a.at("planar"), b.at("planar"));
        for (const char * vector : { "first", "column", "row" })
          for (int i = 0; i < 3; ++i)
            EXPECT_NEAR(a.at(vector)[i].get<double>(), b.at(vector)[i].get<double>(), 1e-12) << key << " " << n;
      }
    }
  }
}

} // namespace
