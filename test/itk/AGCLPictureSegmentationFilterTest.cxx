/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkAGCLPictureSegmentationFilter.h"

#include "itkAGCLEncoderFilter.h"
#include "itkAGCLPictureFilters.h"
#include "itkASPPDecoderFilter.h"

#include "../common/RemoveAtExit.h"
#include "../common/TinyModelConfig.h"
#include "itkImageFileReader.h"
#include "itkImageFileWriter.h"
#include "agcl/AGCLModel.h"
#include "itkRGBPixel.h"
#include "itkVector.h"
#include "itkVectorImage.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <random>
#include <unistd.h>

// The filter is the one-call pipeline of 2D pictures over agcl::SegmentPicture; what it adds is
// the reading of ITK pixels (RGB, vector, variable-length vector; the component order, columns
// along x and rows along y) and the outputs' geometry. The reference is the core called on the
// pixels laid out by hand, [c][y][x] from pixel (x, y)'s component c.
namespace {

using Labels = itk::Image<unsigned char, 2>;
constexpr int64_t H = 37, W = 50; // not square: a transposition would show
constexpr double  kSpacing[2] = { 0.3, 0.7 }, kOrigin[2] = { 5.0, -2.0 };

itk::AGCLModelObject::Pointer
PictureModel(uint64_t seed, double threshold = 0.0, double coarseWeight = 0.0)
{
  agcl::ModelConfig config = agcl::test::TinyPictureConfig();
  config.channel_mean = { 124, 116, 104 };
  config.channel_std = { 58, 57, 57 };
  config.margin_mm = 3;
  config.threshold = threshold;
  config.coarse_weight = coarseWeight;
  config.coarse_vote_scaled_to_peak = coarseWeight > 0;
  torch::manual_seed(seed);
  auto model = itk::AGCLModelObject::New();
  model->SetModel(std::make_shared<agcl::AGCLModel>(config));
  return model;
}

std::vector<std::array<unsigned char, 3>>
RandomPixels()
{
  std::mt19937                              rng(4);
  std::vector<std::array<unsigned char, 3>> pixels(H * W);
  for (auto & p : pixels)
    for (auto & c : p)
      c = static_cast<unsigned char>(rng() % 256);
  // A bright square and a dark disc, so that the networks see structure.
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
    {
      if (x > 5 && x < 20 && y > 8 && y < 24)
        pixels[y * W + x] = { 240, 230, 40 };
      if (std::hypot(x - 36, y - 20) < 8)
        pixels[y * W + x] = { 20, 30, 200 };
    }
  return pixels;
}

template <typename TImage>
typename TImage::Pointer
MakeImage(const std::vector<std::array<unsigned char, 3>> & pixels)
{
  auto                        image = TImage::New();
  typename TImage::RegionType region;
  region.SetSize({ { static_cast<itk::SizeValueType>(W), static_cast<itk::SizeValueType>(H) } });
  image->SetRegions(region);
  if constexpr (std::is_same_v<TImage, itk::VectorImage<float, 2>>)
    image->SetNumberOfComponentsPerPixel(3);
  image->Allocate();
  image->SetSpacing(kSpacing);
  image->SetOrigin(kOrigin);
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
    {
      typename TImage::PixelType p = image->GetPixel({ { x, y } });
      for (int c = 0; c < 3; ++c)
        p[c] = pixels[y * W + x][c];
      image->SetPixel({ { x, y } }, p);
    }
  return image;
}

template <typename TImage>
Labels::Pointer
Segment(const TImage * image, itk::AGCLModelObject * model, Labels::Pointer * coarse = nullptr)
{
  auto filter = itk::AGCLPictureSegmentationFilter<TImage>::New();
  filter->SetInput(image);
  filter->SetModel(model);
  filter->Update();
  EXPECT_GT(filter->GetNumberOfPatches(), 0);
  if (coarse)
    *coarse = filter->GetCoarseLabelMapOutput();
  return filter->GetOutput();
}

} // namespace

TEST(AGCLPictureSegmentationFilter, EveryPixelTypeGivesTheCoreResultWithTheInputGeometry)
{
  const auto pixels = RandomPixels();
  const auto model = PictureModel(2);
  // The reference: the core on the pixels laid out by hand.
  at::Tensor tensor = at::empty({ 3, H, W }, at::kFloat);
  auto       t = tensor.accessor<float, 3>();
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int c = 0; c < 3; ++c)
        t[c][y][x] = pixels[y * W + x][c];
  agcl::Picture picture;
  picture.pixels = tensor;
  const auto expected = agcl::SegmentPicture(model->GetModel(), picture, torch::kCPU);
  ASSERT_GT(expected.labels.count_nonzero().item<int64_t>(), 0) << "threshold 0: attended pixels are labelled";

  auto check = [&](const Labels * labels, const Labels * coarse, const char * what) {
    ASSERT_EQ(labels->GetLargestPossibleRegion().GetSize(), (Labels::SizeType{ { W, H } })) << what;
    for (int d = 0; d < 2; ++d)
    {
      EXPECT_EQ(labels->GetSpacing()[d], kSpacing[d]) << what;
      EXPECT_EQ(labels->GetOrigin()[d], kOrigin[d]) << what;
      EXPECT_EQ(coarse->GetSpacing()[d], kSpacing[d]) << what;
    }
    const auto l = expected.labels.accessor<uint8_t, 2>();
    const auto k = expected.coarse.accessor<uint8_t, 2>();
    int        differences = 0;
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
        differences += labels->GetPixel({ { x, y } }) != l[y][x] || coarse->GetPixel({ { x, y } }) != k[y][x];
    EXPECT_EQ(differences, 0) << what;
  };
  Labels::Pointer coarse, labels;
  const auto      rgb = MakeImage<itk::Image<itk::RGBPixel<unsigned char>, 2>>(pixels);
  labels = Segment(rgb.GetPointer(), model, &coarse);
  check(labels, coarse, "RGBPixel");
  const auto vectors = MakeImage<itk::Image<itk::Vector<float, 3>, 2>>(pixels);
  labels = Segment(vectors.GetPointer(), model, &coarse);
  check(labels, coarse, "Vector<float, 3>");
  const auto variable = MakeImage<itk::VectorImage<float, 2>>(pixels);
  labels = Segment(variable.GetPointer(), model, &coarse);
  check(labels, coarse, "VectorImage");

  // In a pipeline: a reader's VectorImage knows its component count only when its information is
  // updated, which the filter's checks must wait for (the PNG is lossless; its spacing is the file's).
  static const auto folder = std::filesystem::temp_directory_path() / ("agcl_picture_" + std::to_string(::getpid()));
  static agcl::test::RemoveAtExit removeFolder(folder);
  std::filesystem::create_directories(folder);
  const std::string file = (folder / "picture.png").string();
  itk::WriteImage(rgb, file);
  auto reader = itk::ImageFileReader<itk::VectorImage<float, 2>>::New();
  reader->SetFileName(file);
  auto filter = itk::AGCLPictureSegmentationFilter<itk::VectorImage<float, 2>>::New();
  filter->SetInput(reader->GetOutput());
  filter->SetModel(model);
  filter->Update();
  const auto l = expected.labels.accessor<uint8_t, 2>();
  int        differences = 0;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      differences += filter->GetOutput()->GetPixel({ { x, y } }) != l[y][x];
  EXPECT_EQ(differences, 0) << "read from a PNG";
}

TEST(AGCLPictureSegmentationFilter, BadInputRaisesNamedErrors)
{
  const auto pixels = RandomPixels();
  const auto rgb = MakeImage<itk::Image<itk::RGBPixel<unsigned char>, 2>>(pixels);
  auto       expectError = [](auto & filter, const std::string & text) {
    try
    {
      filter->Update();
      ADD_FAILURE() << "no exception; expected one containing '" << text << "'";
    }
    catch (const itk::ExceptionObject & e)
    {
      EXPECT_NE(std::string(e.GetDescription()).find(text), std::string::npos) << e.GetDescription();
    }
  };
  auto filter = itk::AGCLPictureSegmentationFilter<itk::Image<itk::RGBPixel<unsigned char>, 2>>::New();
  filter->SetInput(rgb);
  expectError(filter, "no model");
  auto volumeModel = itk::AGCLModelObject::New();
  volumeModel->SetModel(std::make_shared<agcl::AGCLModel>(agcl::test::TinyModelConfig()));
  filter->SetModel(volumeModel);
  expectError(filter, "is for 3D volumes ('image.dimensions' 3)");
  filter->SetModel(PictureModel(2));
  filter->SetDevice("tpu");
  expectError(filter, "Device");
  filter->SetDevice("cpu");
  filter->SetOverlap(1.0);
  expectError(filter, "Overlap 1: expected 0 <= overlap < 1");

  auto grey = itk::Image<float, 2>::New();
  grey->SetRegions(rgb->GetLargestPossibleRegion());
  grey->Allocate();
  grey->FillBuffer(0.0f);
  auto greyFilter = itk::AGCLPictureSegmentationFilter<itk::Image<float, 2>>::New();
  greyFilter->SetInput(grey);
  greyFilter->SetModel(PictureModel(2));
  expectError(greyFilter, "the input has 1 component(s) per pixel; the model reads 3");
  auto nan = itk::VectorImage<float, 2>::New();
  nan->SetRegions(rgb->GetLargestPossibleRegion());
  nan->SetNumberOfComponentsPerPixel(3);
  nan->Allocate();
  itk::VariableLengthVector<float> value(3);
  value.Fill(std::nanf(""));
  nan->FillBuffer(value);
  auto nanFilter = itk::AGCLPictureSegmentationFilter<itk::VectorImage<float, 2>>::New();
  nanFilter->SetInput(nan);
  nanFilter->SetModel(PictureModel(2));
  expectError(nanFilter, "not finite");
}

TEST(AGCLPictureFilters, TheSingleFiltersGiveTheOneCallFiltersLabels)
{
  // Pipeline = single filters, with the coarse vote and a threshold that leaves decisions to make.
  using RGBImage = itk::Image<itk::RGBPixel<unsigned char>, 2>;
  const auto rgb = MakeImage<RGBImage>(RandomPixels());
  const auto model = PictureModel(5, 0.45, 0.4);
  auto       whole = itk::AGCLPictureSegmentationFilter<RGBImage>::New();
  whole->SetInput(rgb);
  whole->SetModel(model);
  whole->Update();

  auto coarse = itk::PictureCoarseAttentionFilter<RGBImage>::New();
  coarse->SetInput(rgb);
  coarse->SetModel(model);
  auto sampler = itk::PictureQueryPatchSamplerFilter<RGBImage>::New();
  sampler->SetInput(rgb);
  sampler->SetModel(model);
  auto fusion = itk::PictureLabelFusionFilter<Labels>::New();
  fusion->SetModel(model);
  fusion->SetReferenceImage(coarse->GetOutput());
  for (int64_t label : { 1, 2 })
  {
    sampler->SetAttentionMap(label, coarse->GetAttentionMap(label));
    fusion->SetAttentionMap(label, coarse->GetAttentionMap(label));
  }
  auto encoder = itk::AGCLEncoderFilter::New();
  encoder->SetInput(sampler->GetOutput());
  encoder->SetEncoder(model->GetModel().Encoder());
  encoder->SetStemFeatures(model->GetModel().Decoder()->UsesStem());
  auto decoder = itk::ASPPDecoderFilter::New();
  decoder->SetInput(encoder->GetOutput());
  decoder->SetDecoder(model->GetModel().Decoder());
  fusion->SetPatches(decoder->GetOutput());
  coarse->Update(); // the coarse vote's probabilities come from its run
  fusion->SetCoarseProbabilities(coarse->GetCoarseProbabilities());
  fusion->Update();

  const auto patches = sampler->GetOutput();
  ASSERT_EQ(patches->GetTensor("image").size(1), 4); // RGB + attention
  EXPECT_EQ(static_cast<int64_t>(patches->GetNumberOfItems()), whole->GetNumberOfPatches());
  int differences = 0, labelled = 0, coarseDifferences = 0;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
    {
      differences += fusion->GetOutput()->GetPixel({ { x, y } }) != whole->GetOutput()->GetPixel({ { x, y } });
      coarseDifferences +=
        coarse->GetOutput()->GetPixel({ { x, y } }) != whole->GetCoarseLabelMapOutput()->GetPixel({ { x, y } });
      labelled += whole->GetOutput()->GetPixel({ { x, y } }) != 0;
    }
  EXPECT_EQ(differences, 0);
  EXPECT_EQ(coarseDifferences, 0);
  EXPECT_GT(labelled, 0);

  // A null map removes the label's attention (as ITK's SetInput(nullptr)): the sampler gives label
  // 1's patches alone, and the fusion labels no pixel 2.
  sampler->SetAttentionMap(2, nullptr);
  sampler->Update();
  ASSERT_GT(sampler->GetOutput()->GetNumberOfItems(), 0u);
  for (const auto & m : sampler->GetOutput()->GetMetadata())
    EXPECT_EQ(m.organ, 1);
  sampler->SetAttentionMap(2, coarse->GetAttentionMap(2));
  fusion->SetAttentionMap(2, nullptr);
  fusion->Update();
  int labelledTwo = 0, labelledTwoBefore = 0;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
    {
      labelledTwo += fusion->GetOutput()->GetPixel({ { x, y } }) == 2;
      labelledTwoBefore += whole->GetOutput()->GetPixel({ { x, y } }) == 2;
    }
  EXPECT_GT(labelledTwoBefore, 0);
  EXPECT_EQ(labelledTwo, 0);

  // Training mode: labels of the patches' organ, 255 where void or outside.
  auto labelMap = Labels::New();
  labelMap->SetRegions(rgb->GetLargestPossibleRegion());
  labelMap->Allocate();
  labelMap->FillBuffer(1);
  labelMap->SetPixel({ { 10, 10 } }, 255);
  sampler->SetLabelMap(labelMap);
  sampler->SetTraining(true);
  sampler->SetPatchesPerOrgan(3);
  sampler->Update();
  const at::Tensor label = sampler->GetOutput()->GetTensor("label");
  ASSERT_EQ(label.dim(), 4);
  const at::Tensor values = std::get<0>(at::_unique(label));
  for (int64_t i = 0; i < values.numel(); ++i)
    EXPECT_TRUE(values[i].item<int>() == 0 || values[i].item<int>() == 1 || values[i].item<int>() == 255);
  // A label map of another size is refused.
  auto               small = Labels::New();
  Labels::RegionType smallRegion;
  smallRegion.SetSize({ { 8, 8 } });
  small->SetRegions(smallRegion);
  small->Allocate();
  small->FillBuffer(0);
  sampler->SetLabelMap(small);
  EXPECT_THROW(sampler->Update(), itk::ExceptionObject);
}

TEST(AGCLPictureFilters, FusionIsTheBruteForcePaintingOfThePatches)
{
  // Two hand-made patches of constant probability (0.9 and 0.3) at non-integer positions; the
  // reference paints each patch pixel onto its nearest picture pixel (halves up) and averages in
  // double; a pixel is labelled where the mean is >= the threshold (0.5) inside the attention.
  const auto         model = PictureModel(2, 0.5);
  const int64_t      P = 16;
  auto               reference = Labels::New();
  Labels::RegionType region;
  region.SetSize({ { static_cast<itk::SizeValueType>(W), static_cast<itk::SizeValueType>(H) } });
  reference->SetRegions(region);
  reference->Allocate();
  reference->FillBuffer(0);
  auto attention = Labels::New();
  attention->SetRegions(region);
  attention->Allocate();
  attention->FillBuffer(0);
  for (int64_t y = 2; y < 34; ++y)
    for (int64_t x = 3; x < 45; ++x)
      attention->SetPixel({ { x, y } }, 1);
  const double                        firsts[2][2] = { { 4.4, 3.6 }, { 12.5, 9.2 } }, values[2] = { 0.9, 0.3 };
  itk::TensorDataObject::MetadataType metadata(2);
  for (int n = 0; n < 2; ++n)
  {
    metadata[n].organ = 1;
    metadata[n].origin = { firsts[n][0], firsts[n][1], 0.0 };
    metadata[n].spacing = { 1.0, 1.0 };
  }
  auto patches = itk::TensorDataObject::New();
  patches->SetTensor("probability",
                     at::cat({ at::full({ 1, 1, P, P }, values[0]), at::full({ 1, 1, P, P }, values[1]) }));
  patches->SetMetadata(metadata);
  auto fusion = itk::PictureLabelFusionFilter<Labels>::New();
  fusion->SetModel(model);
  fusion->SetReferenceImage(reference);
  fusion->SetAttentionMap(1, attention);
  fusion->SetPatches(patches);
  fusion->Update();
  std::vector<double> sum(H * W, 0.0), count(H * W, 0.0);
  for (int n = 0; n < 2; ++n)
    for (int64_t r = 0; r < P; ++r)
      for (int64_t q = 0; q < P; ++q)
      {
        const int64_t x = static_cast<int64_t>(std::floor(firsts[n][0] + q + 0.5));
        const int64_t y = static_cast<int64_t>(std::floor(firsts[n][1] + r + 0.5));
        sum[y * W + x] += values[n];
        count[y * W + x] += 1.0;
      }
  int labelled = 0;
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
    {
      const bool inside = attention->GetPixel({ { x, y } }) != 0;
      const bool expected = inside && count[y * W + x] > 0 && sum[y * W + x] / count[y * W + x] >= 0.5;
      EXPECT_EQ(fusion->GetOutput()->GetPixel({ { x, y } }), expected ? 1 : 0) << "pixel (" << x << ", " << y << ")";
      labelled += expected;
    }
  EXPECT_GT(labelled, 100); // patch A's pixels, and the overlap where (0.9 + 0.3) / 2 = 0.6
}
