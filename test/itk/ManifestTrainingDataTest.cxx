/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// The trainer's ITK data: a 4-subject 64 x 64 x 32 phantom cohort read from a manifest.
#include "agcl/AGCLModel.h"
#include "agcl/AGCLTrainer.h"
#include "agcl/ModelBundle.h"
#include "common/TinyModelConfig.h"
#include "common/RemoveAtExit.h"
#include "itkAGCLSegmentationFilter.h"
#include "itkAbdominalPhantomImageSource.h"
#include "itkImageFileReader.h"
#include "itkImageFileWriter.h"
#include "itkManifestTrainingData.h"
#include "itkRGBPixel.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

namespace {
namespace fs = std::filesystem;
using Source = itk::AbdominalPhantomImageSource;
using CT = itk::ManifestTrainingData::CTImageType;
using Labels = itk::ManifestTrainingData::LabelImageType;

template <typename TImage>
void
Write(const TImage * image, const fs::path & file)
{
  auto writer = itk::ImageFileWriter<TImage>::New();
  writer->SetInput(image);
  writer->SetFileName(file.string());
  writer->Update();
}

// Subjects 0-2 train, 3 val; subject 1 non-contrast. Written once per test program.
const fs::path &
Cohort()
{
  static const fs::path directory = [] {
    const fs::path d = fs::temp_directory_path() / ("agcl_manifest_data_" + std::to_string(::getpid()));
    fs::create_directories(d);
    static const agcl::test::RemoveAtExit cleanup(d);
    std::ofstream                         manifest(d / "manifest.csv");
    manifest << "subject,image,label,modality,split\n";
    for (int i = 0; i < 4; ++i)
    {
      auto source = Source::New();
      source->SetSize(Source::SizeType{ { 64, 64, 32 } });
      source->SetSeed(20 + i);
      source->SetModality(i == 1 ? Source::ModalityEnum::NonContrast : Source::ModalityEnum::PortalVenous);
      source->Update();
      const std::string name = "s" + std::to_string(i);
      Write(source->GetOutput(), d / (name + ".nrrd"));
      Write(source->GetLabelOutput(), d / (name + "_label.nrrd"));
      manifest << name << "," << name << ".nrrd," << name << "_label.nrrd," << (i == 1 ? "noncontrast" : "contrast")
               << "," << (i < 3 ? "train" : "val") << "\n";
    }
    return d;
  }();
  return directory;
}

template <typename TImage>
typename TImage::Pointer
Read(const fs::path & file)
{
  auto reader = itk::ImageFileReader<TImage>::New();
  reader->SetFileName(file.string());
  reader->Update();
  return reader->GetOutput();
}

void
WriteManifest(const fs::path & file, const std::string & rows)
{
  std::ofstream(file) << "subject,image,label,modality,split\n" << rows;
}
} // namespace

TEST(ManifestTrainingData, CoarseClassesAreTheLabelsAtTheNearestVoxel)
{
  const agcl::ModelConfig   config = agcl::test::TinyModelConfig();
  itk::ManifestTrainingData data((Cohort() / "manifest.csv").string(), config);
  const agcl::CoarseSample  sample = data.Coarse(0, config);
  const auto                labels = Read<Labels>(Cohort() / "s0_label.nrrd");
  const auto                size = labels->GetLargestPossibleRegion().GetSize();
  const auto                spacing = labels->GetSpacing();
  std::array<int64_t, 3>    coarseSize;
  for (unsigned d = 0; d < 3; ++d)
    coarseSize[d] = static_cast<int64_t>(std::ceil(size[d] * spacing[d] / 8.0 - 1e-6));
  ASSERT_EQ(sample.classes.sizes().vec(), (std::vector<int64_t>{ coarseSize[2], coarseSize[1], coarseSize[0] }));
  ASSERT_EQ(sample.image.sizes(), sample.classes.sizes());
  EXPECT_GE(sample.image.min().item<double>(), 0.0);
  EXPECT_LE(sample.image.max().item<double>(), 1.0);
  // Brute force: the coarse voxel (i, j, k) has its centre at (index + 0.5) * 8 mm - 0.5 * spacing
  // from the first fine voxel's centre (lower edges aligned); take the nearest fine voxel.
  std::map<int, int64_t> classOf{ { 1, 1 }, { 2, 2 }, { 6, 3 }, { 8, 4 } };
  const auto             classes = sample.classes.accessor<int64_t, 3>();
  int64_t                compared = 0, organ = 0;
  for (int64_t k = 0; k < coarseSize[2]; ++k)
    for (int64_t j = 0; j < coarseSize[1]; ++j)
      for (int64_t i = 0; i < coarseSize[0]; ++i)
      {
        const std::array<int64_t, 3> c{ i, j, k };
        Labels::IndexType            nearest;
        bool                         inside = true, tie = false;
        for (unsigned d = 0; d < 3; ++d)
        {
          const double continuous = ((c[d] + 0.5) * 8.0) / spacing[d] - 0.5;
          tie = tie || std::abs(continuous - std::floor(continuous) - 0.5) < 1e-6;
          nearest[d] = static_cast<long>(std::lround(continuous));
          inside = inside && nearest[d] >= 0 && nearest[d] < static_cast<long>(size[d]);
        }
        if (tie)
          continue;
        const int     value = inside ? labels->GetPixel(nearest) : 0;
        const int64_t expected = classOf.count(value) ? classOf[value] : 0;
        EXPECT_EQ(classes[k][j][i], expected) << "coarse voxel " << i << "," << j << "," << k;
        ++compared;
        organ += expected != 0;
      }
  EXPECT_GT(compared, 100);
  EXPECT_GT(organ, 10);
}

TEST(ManifestTrainingData, LabelsOutsideTheConfigAreNamedOnce)
{
  const agcl::ModelConfig   config = agcl::test::TinyModelConfig();
  itk::ManifestTrainingData data((Cohort() / "manifest.csv").string(), config);
  data.Coarse(0, config);
  data.Coarse(2, config);
  std::set<int> expected;
  for (const char * name : { "s0_label.nrrd", "s2_label.nrrd" })
  {
    const auto labels = Read<Labels>(Cohort() / name);
    for (itk::ImageRegionConstIterator<Labels> it(labels, labels->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
      if (it.Get() != 0 && it.Get() != 1 && it.Get() != 2 && it.Get() != 6 && it.Get() != 8)
        expected.insert(it.Get());
  }
  EXPECT_FALSE(expected.empty());
  EXPECT_EQ(data.IgnoredLabels(), expected);
}

TEST(ManifestTrainingData, PatchesCarryOrganModalityAndMasks)
{
  const agcl::ModelConfig   config = agcl::test::TinyModelConfig();
  itk::ManifestTrainingData data((Cohort() / "manifest.csv").string(), config);
  agcl::AGCLModel           model(config);
  const agcl::PatchSet      patches = data.Patches(1, agcl::AttentionSource::Truth, model, at::kCPU, 5, 3);
  ASSERT_GT(patches.Size(), 0);
  EXPECT_EQ(patches.image.sizes().vec(), (std::vector<int64_t>{ patches.Size(), 2, 32, 32 }));
  EXPECT_EQ(patches.mask.sizes().vec(), (std::vector<int64_t>{ patches.Size(), 32, 32 }));
  EXPECT_TRUE(patches.modality.eq(1).all().item<bool>()); // subject 1 is non-contrast
  // At most 5 per organ, organ indices of the config, every patch's centre in its attention.
  const at::Tensor counts = at::bincount(patches.organ, {}, 4);
  EXPECT_LE(counts.max().item<int64_t>(), 5);
  EXPECT_EQ(counts.gt(0).sum().item<int64_t>(), 4); // all four organs are in the phantom
  EXPECT_TRUE(patches.image.select(1, 1).select(1, 16).select(1, 16).eq(1).all().item<bool>());
  // Masks: the organ lies inside its attention (the truth dilated).
  EXPECT_TRUE((patches.mask.to(at::kFloat) <= patches.image.select(1, 1)).all().item<bool>());
  EXPECT_GT(patches.mask.sum().item<int64_t>(), 0);
}

TEST(ManifestTrainingData, BadManifestsAreNamed)
{
  const fs::path d = Cohort();
  auto           message = [&](const std::string & rows) {
    WriteManifest(d / "bad.csv", rows);
    try
    {
      itk::ManifestTrainingData data((d / "bad.csv").string(), agcl::test::TinyModelConfig());
      data.Coarse(0, agcl::test::TinyModelConfig());
    }
    catch (const std::exception & e)
    {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("s0,s0.nrrd,s0_label.nrrd,mri,train\n").find("modality 'mri'"), std::string::npos);
  EXPECT_NE(message("s0,s0.nrrd,,contrast,val\n").find("validation subject needs a label"), std::string::npos);
  EXPECT_NE(message("s0,s0.nrrd,missing.nrrd,contrast,train\n").find("missing.nrrd"), std::string::npos);
  EXPECT_NE(message("s0,s0.nrrd,s0_label.nrrd,contrast,holdout\n").find("split 'holdout'"), std::string::npos);
  // A label map of another grid.
  auto source = Source::New();
  source->SetSize(Source::SizeType{ { 32, 32, 16 } });
  source->Update();
  Write(source->GetLabelOutput(), d / "small_label.nrrd");
  EXPECT_NE(message("s0,s0.nrrd,small_label.nrrd,contrast,train\n").find("does not have the grid"), std::string::npos);
  std::ofstream(d / "nolabel.csv") << "subject,image,modality,split\ns0,s0.nrrd,contrast,train\n";
  try
  {
    itk::ManifestTrainingData data((d / "nolabel.csv").string(), agcl::test::TinyModelConfig());
    ADD_FAILURE() << "manifest without a label column accepted";
  }
  catch (const agcl::ManifestError & e)
  {
    EXPECT_NE(std::string(e.what()).find("'label'"), std::string::npos) << e.what();
  }
}

TEST(ManifestTrainingData, TrainedModelSegmentsThroughTheFilter)
{
  const agcl::ModelConfig   config = agcl::test::TinyModelConfig();
  itk::ManifestTrainingData data((Cohort() / "manifest.csv").string(), config);
  const fs::path            run = Cohort() / "run";
  fs::remove_all(run);
  agcl::AGCLTrainer trainer(agcl::AGCLTrainerOptions()
                              .output_directory(run.string())
                              .model(config)
                              .coarse_steps(3)
                              .pretraining_steps(3)
                              .decoder_steps(3)
                              .pretraining_batch_size(8)
                              .decoder_batch_size(8)
                              .patches_per_organ(4)
                              .show_progress(false));
  const std::string model = trainer.Run(data);
  EXPECT_EQ(trainer.LabelledSubjects(), (std::vector<std::string>{ "s0", "s1", "s2" }));
  auto filter = itk::AGCLSegmentationFilter<CT, Labels>::New();
  filter->SetInput(Read<CT>(Cohort() / "s3.nrrd"));
  filter->SetModelFileName(model);
  ASSERT_NO_THROW(filter->Update());
  EXPECT_EQ(filter->GetOutput()->GetLargestPossibleRegion().GetSize(), (Labels::SizeType{ { 64, 64, 32 } }));
  // The log has one JSON line per logging step of each stage (log_every 10 > 3 steps: the last).
  std::ifstream log(run / "log.jsonl");
  std::string   line;
  int           lines = 0;
  while (std::getline(log, line))
    lines += line.find("\"loss\"") != std::string::npos;
  EXPECT_EQ(lines, 3);
}

TEST(ManifestTrainingData, ResumedPhantomTrainingEndsWithTheUninterruptedWeights)
{
  const agcl::ModelConfig config = agcl::test::TinyModelConfig();
  auto                    options = [&](const fs::path & run) {
    return agcl::AGCLTrainerOptions()
      .output_directory(run.string())
      .model(config)
      .coarse_steps(4)
      .pretraining_steps(4)
      .decoder_steps(4)
      .pretraining_batch_size(8)
      .decoder_batch_size(8)
      .patches_per_organ(4)
      .checkpoint_every(2)
      .validate_every(2)
      .show_progress(false);
  };
  const fs::path whole = Cohort() / "whole", crash = Cohort() / "crash";
  fs::remove_all(whole);
  fs::remove_all(crash);
  std::vector<double> losses;
  {
    itk::ManifestTrainingData data((Cohort() / "manifest.csv").string(), config);
    agcl::AGCLTrainer         trainer(options(whole).log_every(1));
    trainer.SetProgressCallback([&](const agcl::TrainingProgress & p) {
      if (p.stage == 0)
        losses.push_back(p.loss);
    });
    trainer.Run(data);
  }
  // Stage 0 on the phantom: the loss falls over its 4 steps.
  ASSERT_EQ(losses.size(), 4u);
  EXPECT_LT(losses[3], losses[0]);
  fs::path leftOver;
  {
    // Checkpoints: stage 0 step 2 and end, stage 1 step 2 and end, stage 2 step 2 and end. Crash
    // while writing the 6th, so that the run resumes mid-stage 2 from the 5th (optimizer state,
    // best weights so far), with freshly read data.
    itk::ManifestTrainingData data((Cohort() / "manifest.csv").string(), config);
    agcl::AGCLTrainer         trainer(options(crash));
    int                       calls = 0;
    trainer.SetCheckpointHook([&](agcl::WritePoint point, const fs::path & temporary) {
      if (point == agcl::WritePoint::Flushed && ++calls == 6)
      {
        leftOver = temporary;
        throw std::runtime_error("simulated crash");
      }
    });
    EXPECT_THROW(trainer.Run(data), std::runtime_error);
  }
  EXPECT_TRUE(fs::exists(leftOver)) << leftOver;
  {
    itk::ManifestTrainingData data((Cohort() / "manifest.csv").string(), config);
    agcl::AGCLTrainer(options(crash).resume(true)).Run(data);
  }
  const auto a = agcl::ModelBundle::Load((whole / "model.agcl").string());
  const auto b = agcl::ModelBundle::Load((crash / "model.agcl").string());
  ASSERT_EQ(a.Tensors().size(), b.Tensors().size());
  for (size_t i = 0; i < a.Tensors().size(); ++i)
    EXPECT_TRUE(at::equal(a.Tensors()[i].second, b.Tensors()[i].second)) << a.Tensors()[i].first;
}

TEST(ManifestTrainingData, PictureCacheStaysWithinItsLimit)
{
  // A 2D cohort of 5 RGB pictures (40 x 30) with 8-bit label maps (a disc of organ 1, a box of
  // organ 2, a void band): with room for 2 decoded pictures, the samples are those of the
  // unbounded cache, the bytes held never exceed the limit, and the pictures are read again.
  const fs::path d = fs::temp_directory_path() / ("agcl_manifest_pictures_" + std::to_string(::getpid()));
  fs::create_directories(d);
  const agcl::test::RemoveAtExit cleanup(d);
  using RGB = itk::Image<itk::RGBPixel<unsigned char>, 2>;
  using Map = itk::Image<unsigned char, 2>;
  constexpr int64_t W = 40, H = 30, N = 5;
  std::string       rows;
  for (int64_t i = 0; i < N; ++i)
  {
    auto            picture = RGB::New();
    auto            labels = Map::New();
    RGB::RegionType region;
    region.SetSize({ { W, H } });
    picture->SetRegions(region);
    picture->Allocate();
    labels->SetRegions(region);
    labels->Allocate();
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
      {
        const bool                   disc = (x - 10 - i) * (x - 10 - i) + (y - 12) * (y - 12) < 36;
        const bool                   box = x >= 24 && x < 34 && y >= 8 + i && y < 20 + i;
        const bool                   voidBand = y == 25;
        itk::RGBPixel<unsigned char> p;
        p.Set(static_cast<unsigned char>(disc ? 200 : 40 + 3 * x),
              static_cast<unsigned char>(box ? 220 : 60 + 2 * y),
              static_cast<unsigned char>(30 * i + x));
        picture->SetPixel({ { x, y } }, p);
        labels->SetPixel({ { x, y } }, voidBand ? 255 : disc ? 1 : box ? 2 : 0);
      }
    const std::string name = "p" + std::to_string(i);
    Write(picture.GetPointer(), d / (name + ".png"));
    Write(labels.GetPointer(), d / (name + "_label.png"));
    rows += name + "," + name + ".png," + name + "_label.png,voc," + (i < 4 ? "train" : "val") + "\n";
  }
  WriteManifest(d / "manifest.csv", rows);
  agcl::ModelConfig config = agcl::test::TinyPictureConfig();
  config.margin_mm = 2;
  agcl::AGCLModel           model(config);
  itk::ManifestTrainingData all((d / "manifest.csv").string(), config);
  itk::ManifestTrainingData bounded((d / "manifest.csv").string(), config);
  const size_t              onePicture = 3 * W * H * sizeof(float) + W * H; // float pixels + uint8 labels
  EXPECT_EQ(all.GetPictureCacheLimit(), size_t{ 2 } << 30);
  bounded.SetPictureCacheLimit(2 * onePicture);
  for (int round = 0; round < 2; ++round)
    for (size_t i = 0; i < static_cast<size_t>(N); ++i)
    {
      const agcl::CoarseSample a = all.Coarse(i, config), b = bounded.Coarse(i, config);
      EXPECT_TRUE(a.image.equal(b.image) && a.classes.equal(b.classes)) << "picture " << i;
      const agcl::PatchSet p = all.Patches(i, agcl::AttentionSource::Truth, model, at::kCPU, 3, 11);
      const agcl::PatchSet q = bounded.Patches(i, agcl::AttentionSource::Truth, model, at::kCPU, 3, 11);
      ASSERT_GT(p.Size(), 0);
      EXPECT_TRUE(p.image.equal(q.image) && p.mask.equal(q.mask) && p.organ.equal(q.organ)) << "picture " << i;
      EXPECT_LE(bounded.PictureCacheBytes(), 2 * onePicture);
    }
  EXPECT_EQ(all.PictureCacheBytes(), N * onePicture);
  EXPECT_EQ(all.PicturesRead(), static_cast<size_t>(N));
  EXPECT_EQ(bounded.PicturesRead(), static_cast<size_t>(2 * N)); // least recently used first: each read twice
  // A limit below one picture still keeps the one in use (and samples it alike).
  bounded.SetPictureCacheLimit(1);
  EXPECT_EQ(bounded.PictureCacheBytes(), 0u);
  EXPECT_TRUE(bounded.Coarse(3, config).classes.equal(all.Coarse(3, config).classes));
  EXPECT_EQ(bounded.PictureCacheBytes(), onePicture);
}
