/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkASPPDecoderFilter.h"
#include "itkAGCLEncoderFilter.h"
#include "itkAbdominalPhantomImageSource.h"
#include "itkCoarseAttentionFilter.h"
#include "itkLabelFusionFilter.h"
#include "itkQueryPatchSamplerFilter.h"

#include "itkImageRegionIteratorWithIndex.h"

#include "agcl/AGCLModel.h"
#include "agcl/Device.h"
#include "common/TinyModelConfig.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <limits>
#include <set>

namespace {
using Source = itk::AbdominalPhantomImageSource;
using CT = Source::CTImageType;
using Labels = Source::LabelImageType;

itk::TensorDataObject::Pointer
RandomPatches(int64_t n)
{
  auto data = itk::TensorDataObject::New();
  torch::manual_seed(1);
  data->SetTensor("image", torch::rand({ n, 2, 32, 32 }));
  itk::TensorDataObject::MetadataType metadata(n);
  for (int64_t i = 0; i < n; ++i)
    metadata[i].organ = static_cast<int>(i % 3) + 1;
  data->SetMetadata(metadata);
  return data;
}
} // namespace

TEST(NetworkFilters, EncoderAndDecoderGiveWhatTheModulesGiveInAnyBatchSize)
{
  torch::manual_seed(2);
  agcl::ResNetEncoder encoder(agcl::ResNetEncoderOptions().depth(18).base_width(8));
  agcl::ASPPDecoder   decoder(
    agcl::ASPPDecoderOptions(encoder->HighLevelChannels(), encoder->LowLevelChannels()).channels(16));
  auto patches = RandomPatches(7);

  auto encode = itk::AGCLEncoderFilter::New();
  encode->SetInput(patches);
  encode->SetEncoder(encoder);
  encode->SetBatchSize(3); // 3 + 3 + 1
  auto decode = itk::ASPPDecoderFilter::New();
  decode->SetInput(encode->GetOutput());
  decode->SetDecoder(decoder);
  decode->SetBatchSize(4);
  decode->Update(); // pulls the encoder through the pipeline

  const auto * features = encode->GetOutput();
  const auto * output = decode->GetOutput();
  ASSERT_EQ(output->GetNumberOfItems(), 7);
  EXPECT_EQ(output->GetMetadata()[5].organ, 3);

  // Reference: the modules on the whole batch directly.
  encoder->eval();
  decoder->eval();
  torch::NoGradGuard  noGrad;
  const auto          direct = encoder(patches->GetTensor("image"));
  const torch::Tensor logits = decoder->forward(direct.low_level, direct.high_level, { 32, 32 });
  EXPECT_TRUE(torch::allclose(features->GetTensor("high_level"), direct.high_level, 1e-4, 1e-5));
  const torch::Tensor probability = output->GetTensor("probability");
  EXPECT_EQ(probability.sizes().vec(), (std::vector<int64_t>{ 7, 1, 32, 32 }));
  EXPECT_TRUE(torch::allclose(probability, torch::softmax(logits, 1).slice(1, 1, 2), 1e-4, 1e-5));

  // Pipeline: a change upstream re-runs both stages.
  const auto before = output->GetMTime();
  patches->SetTensor("image", torch::rand({ 7, 2, 32, 32 }));
  decode->Update();
  EXPECT_GT(output->GetMTime(), before);
}

TEST(NetworkFilters, AStride2DecoderReadsTheStemFeaturesTheEncoderFilterIsAskedFor)
{
  torch::manual_seed(5);
  agcl::ResNetEncoder encoder(agcl::ResNetEncoderOptions().depth(18).base_width(8));
  agcl::ASPPDecoder   decoder(agcl::ASPPDecoderOptions(encoder->HighLevelChannels(), encoder->LowLevelChannels())
                              .channels(16)
                              .stem_channels(encoder->StemChannels()));
  auto                patches = RandomPatches(5);
  auto                encode = itk::AGCLEncoderFilter::New();
  encode->SetInput(patches);
  encode->SetEncoder(encoder);
  encode->SetBatchSize(2);
  auto decode = itk::ASPPDecoderFilter::New();
  decode->SetInput(encode->GetOutput());
  decode->SetDecoder(decoder);
  decode->SetBatchSize(3);
  try
  {
    decode->Update();
    FAIL() << "a stride-2 decoder ran without the stem features";
  }
  catch (const itk::ExceptionObject & e)
  {
    EXPECT_NE(std::string(e.GetDescription()).find("StemFeaturesOn()"), std::string::npos) << e.GetDescription();
  }
  EXPECT_FALSE(encode->GetOutput()->HasTensor("stem"));
  encode->StemFeaturesOn();
  decode->Update();
  ASSERT_TRUE(encode->GetOutput()->HasTensor("stem"));

  encoder->eval();
  decoder->eval();
  torch::NoGradGuard  noGrad;
  const auto          direct = encoder(patches->GetTensor("image"));
  const torch::Tensor logits = decoder->forward(direct.low_level, direct.high_level, { 32, 32 }, direct.stem);
  EXPECT_TRUE(torch::allclose(encode->GetOutput()->GetTensor("stem"), direct.stem, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(
    decode->GetOutput()->GetTensor("probability"), torch::softmax(logits, 1).slice(1, 1, 2), 1e-4, 1e-5));
}

TEST(NetworkFilters, FromThePhantomThroughAttentionSamplingEncoderAndDecoder)
{
  auto             source = Source::New();
  Source::SizeType size{ { 64, 64, 24 } };
  source->SetSize(size);
  auto attention = itk::CoarseAttentionFilter<CT, Labels>::New();
  attention->SetInput(source->GetOutput());
  attention->SetCoarseLabelMap(source->GetLabelOutput());
  auto sampler = itk::QueryPatchSamplerFilter<CT, Labels>::New();
  sampler->SetInput(source->GetOutput());
  sampler->SetAttentionMap(6, attention->GetAttentionMap(6));
  sampler->SetPatchSize(32);
  torch::manual_seed(3);
  agcl::ResNetEncoder encoder(agcl::ResNetEncoderOptions().depth(18).base_width(8));
  agcl::ASPPDecoder   decoder(
    agcl::ASPPDecoderOptions(encoder->HighLevelChannels(), encoder->LowLevelChannels()).channels(16));
  auto encode = itk::AGCLEncoderFilter::New();
  encode->SetInput(sampler->GetOutput());
  encode->SetEncoder(encoder);
  auto decode = itk::ASPPDecoderFilter::New();
  decode->SetInput(encode->GetOutput());
  decode->SetDecoder(decoder);
  decode->Update();
  const at::Tensor probability = decode->GetOutput()->GetTensor("probability");
  ASSERT_GT(probability.size(0), 0);
  EXPECT_EQ(probability.size(0), sampler->GetOutput()->GetNumberOfItems());
  EXPECT_GE(probability.min().item<float>(), 0.0f);
  EXPECT_LE(probability.max().item<float>(), 1.0f);

  // ... and back into a label map with the CT's geometry, only inside the liver's attention.
  auto fusion = itk::LabelFusionFilter<Labels>::New();
  fusion->SetPatches(decode->GetOutput());
  fusion->SetReferenceImage(source->GetOutput());
  fusion->SetAttentionMap(6, attention->GetAttentionMap(6));
  fusion->SetThreshold(0.0); // an untrained decoder: accept any probability, to test the plumbing
  fusion->PostProcessingOff();
  fusion->Update();
  const Labels * fused = fusion->GetOutput();
  EXPECT_EQ(fused->GetLargestPossibleRegion(), source->GetOutput()->GetLargestPossibleRegion());
  EXPECT_EQ(fused->GetSpacing(), source->GetOutput()->GetSpacing());
  EXPECT_EQ(fused->GetOrigin(), source->GetOutput()->GetOrigin());
  const auto * f = fused->GetBufferPointer();
  const auto * a = attention->GetAttentionMap(6)->GetBufferPointer();
  const auto   n = fused->GetLargestPossibleRegion().GetNumberOfPixels();
  for (size_t v = 0; v < n; ++v)
  {
    ASSERT_TRUE(f[v] == 0 || (f[v] == 6 && a[v] == 1)) << v;
    ASSERT_TRUE(a[v] == 0 || f[v] == 6) << "attention voxel " << v << " not covered by any tile";
  }
}

TEST(NetworkFilters, BadDeviceMissingModelAndWrongShapesAreItkExceptions)
{
  agcl::ResNetEncoder encoder(agcl::ResNetEncoderOptions().depth(18).base_width(8));
  auto                encode = itk::AGCLEncoderFilter::New();
  encode->SetInput(RandomPatches(2));
  EXPECT_THROW(encode->Update(), itk::ExceptionObject); // no encoder
  encode->SetEncoder(encoder);
  encode->SetDevice("tpu");
  EXPECT_THROW(encode->Update(), itk::ExceptionObject);
  if (!agcl::CudaAvailable())
  {
    encode->SetDevice("cuda");
    try
    {
      encode->Update();
      ADD_FAILURE() << "no exception for cuda without CUDA";
    }
    catch (const itk::ExceptionObject & e)
    {
      EXPECT_NE(std::string(e.GetDescription()).find("device 'cuda'"), std::string::npos) << e.GetDescription();
    }
  }
  encode->SetDevice("cpu");
  auto odd = itk::TensorDataObject::New();
  odd->SetTensor("image", torch::rand({ 2, 2, 30, 30 })); // not a multiple of 16
  encode->SetInput(odd);
  try
  {
    encode->Update();
    ADD_FAILURE() << "no exception for 30 x 30 patches";
  }
  catch (const itk::ExceptionObject & e)
  {
    EXPECT_NE(std::string(e.GetDescription()).find("multiples of 16"), std::string::npos) << e.GetDescription();
  }
  auto decode = itk::ASPPDecoderFilter::New();
  decode->SetInput(RandomPatches(2)); // no features
  decode->SetDecoder(agcl::ASPPDecoder(agcl::ASPPDecoderOptions(64, 8).channels(16)));
  EXPECT_THROW(decode->Update(), itk::ExceptionObject);
}

// ---------------------------------------------------------------------------------------------
// CoarseAttentionFilter's network mode.
namespace {
agcl::ModelConfig
TinyConfig()
{
  return agcl::test::TinyModelConfig(); // organs 1, 2, 6, 8
}

itk::AGCLModelObject::Pointer
TinyModel(uint64_t seed = 4)
{
  torch::manual_seed(seed);
  auto object = itk::AGCLModelObject::New();
  object->SetModel(std::make_shared<agcl::AGCLModel>(TinyConfig()));
  return object;
}

using FloatImage = itk::Image<float, 3>;
using FloatFilter = itk::CoarseAttentionFilter<FloatImage, Labels>;
} // namespace

TEST(CoarseAttentionFilter, CoarseGridResamplingMatchesANaiveTrilinearReference)
{
  // HU = 2x + 3y - z (linear, so trilinear interpolation is exact), on a flipped-x, anisotropic grid.
  auto                   image = FloatImage::New();
  FloatImage::SizeType   size{ { 20, 16, 10 } };
  FloatImage::RegionType region(size);
  image->SetRegions(region);
  const double spacing[3] = { 1.5, 2.0, 3.0 }, origin[3] = { -10.0, 5.0, 30.0 };
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  FloatImage::DirectionType direction;
  direction.SetIdentity();
  direction(0, 0) = -1.0;
  image->SetDirection(direction);
  image->Allocate();
  auto hu = [](const double p[3]) { return 2 * p[0] + 3 * p[1] - p[2]; };
  for (itk::ImageRegionIteratorWithIndex<FloatImage> it(image, region); !it.IsAtEnd(); ++it)
  {
    FloatImage::PointType p;
    image->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    const double q[3] = { p[0], p[1], p[2] };
    it.Set(static_cast<float>(hu(q)));
  }
  agcl::ModelConfig config = TinyConfig();
  config.coarse_spacing_mm = { 4.0, 5.0, 6.0 };
  config.coarse_window_low = -50.0;
  config.coarse_window_high = 100.0;
  const auto coarse = FloatFilter::ResampleToCoarseGrid(image, config);
  const auto coarseSize = coarse->GetLargestPossibleRegion().GetSize();
  EXPECT_EQ(coarseSize[0], 8u); // ceil(20 * 1.5 / 4)
  EXPECT_EQ(coarseSize[1], 7u); // ceil(16 * 2 / 5)
  EXPECT_EQ(coarseSize[2], 5u); // 10 * 3 / 6
  int outside = 0;
  for (itk::ImageRegionConstIteratorWithIndex<FloatImage> it(coarse, coarse->GetLargestPossibleRegion()); !it.IsAtEnd();
       ++it)
  {
    const auto idx = it.GetIndex();
    // Coarse voxel centre: lower corner of the input grid + (i + 1/2) coarse voxels, along the direction.
    double       p[3], c[3];
    const double cs[3] = { 4.0, 5.0, 6.0 };
    for (int d = 0; d < 3; ++d)
    {
      const double along = -0.5 * spacing[d] + (idx[d] + 0.5) * cs[d];
      p[d] = origin[d] + direction(d, d) * along;
      c[d] = along / spacing[d]; // continuous index in the input
    }
    double expected = -50.0; // outside the input: air at the window's low end
    if (c[0] <= size[0] - 0.5 && c[1] <= size[1] - 0.5 && c[2] <= size[2] - 0.5)
    {
      double q[3];
      for (int d = 0; d < 3; ++d)
        q[d] = origin[d] + direction(d, d) * std::min(c[d], size[d] - 1.0) * spacing[d];
      expected = hu(q);
    }
    else
    {
      ++outside;
    }
    EXPECT_NEAR(it.Get(), std::clamp((expected + 50.0) / 150.0, 0.0, 1.0), 1e-5) << idx;
  }
  EXPECT_GT(outside, 0); // the grid overhangs in x and y: that path is exercised
}

TEST(CoarseAttentionFilter, NetworkModeResamplesTheNetworkClassesBackByNearestNeighbour)
{
  auto             source = Source::New();
  Source::SizeType size{ { 64, 64, 24 } };
  source->SetSize(size);
  source->SetSeed(5);
  source->Update();
  const CT * ct = source->GetOutput();
  auto       model = TinyModel();

  using Filter = itk::CoarseAttentionFilter<CT, Labels>;
  auto filter = Filter::New();
  filter->SetInput(ct);
  filter->SetModel(model);
  filter->SetMarginMM(0.0);
  ASSERT_EQ(filter->GetOrganLabels(), (std::vector<unsigned char>{ 1, 2, 6, 8 }));
  filter->Update();
  const Labels * labels = filter->GetCoarseLabelOutput();
  EXPECT_EQ(labels->GetLargestPossibleRegion(), ct->GetLargestPossibleRegion());
  EXPECT_EQ(labels->GetSpacing(), ct->GetSpacing());

  // Reference: the network on the coarse grid, then each full-resolution voxel takes the class of
  // the coarse voxel whose centre is nearest (index rounded half up, as nearest-neighbour does).
  const auto          coarse = Filter::ResampleToCoarseGrid(ct, model->GetConfig());
  const auto          cs = coarse->GetLargestPossibleRegion().GetSize();
  const torch::Tensor classes = model->GetModel().PredictCoarseClasses(
    torch::from_blob(coarse->GetBufferPointer(), { (long)cs[2], (long)cs[1], (long)cs[0] }), torch::kCPU);
  const uint8_t *     c = classes.data_ptr<uint8_t>();
  const unsigned char organOf[5] = { 0, 1, 2, 6, 8 };
  std::set<int>       seen;
  long                mismatches = 0;
  for (itk::ImageRegionConstIteratorWithIndex<Labels> it(labels, labels->GetLargestPossibleRegion()); !it.IsAtEnd();
       ++it)
  {
    CT::PointType p;
    ct->TransformIndexToPhysicalPoint(it.GetIndex(), p);
    long k[3];
    for (int d = 0; d < 3; ++d)
    {
      const double continuous = (p[d] - coarse->GetOrigin()[d]) / coarse->GetSpacing()[d]; // identity direction
      k[d] = std::clamp(static_cast<long>(std::floor(continuous + 0.5)), 0L, static_cast<long>(cs[d]) - 1);
    }
    const unsigned char expected = organOf[c[(k[2] * cs[1] + k[1]) * cs[0] + k[0]]];
    seen.insert(expected);
    mismatches += it.Get() != expected;
    // Margin 0: the attention map of an organ is exactly its coarse region.
    if (expected != 0)
    {
      EXPECT_EQ(filter->GetAttentionMap(expected)->GetPixel(it.GetIndex()), 1);
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GE(seen.size(), 2u) << "the random coarse network should give more than one class here";
}

TEST(CoarseAttentionFilter, NetworkClassesMapToTheModelsOrganLabels)
{
  // Classifier forced to class 3 everywhere: the third organ of the model, label 6.
  auto model = TinyModel();
  {
    torch::NoGradGuard noGrad;
    for (auto & p : model->GetModel().Coarse()->named_parameters())
    {
      if (p.key().rfind("classifier.", 0) == 0)
        p.value().zero_();
      if (p.key() == "classifier.bias")
        p.value()[3] = 5.0;
    }
  }
  auto             source = Source::New();
  Source::SizeType size{ { 32, 32, 16 } };
  source->SetSize(size);
  auto filter = itk::CoarseAttentionFilter<CT, Labels>::New();
  filter->SetInput(source->GetOutput());
  filter->SetModel(model);
  filter->Update();
  const auto count = [](const Labels * image, unsigned char value) {
    long n = 0;
    for (itk::ImageRegionConstIterator<Labels> it(image, image->GetLargestPossibleRegion()); !it.IsAtEnd(); ++it)
      n += it.Get() == value;
    return n;
  };
  const long voxels = 32 * 32 * 16;
  EXPECT_EQ(count(filter->GetCoarseLabelOutput(), 6), voxels);
  EXPECT_EQ(count(filter->GetAttentionMap(6), 1), voxels);
  EXPECT_EQ(count(filter->GetAttentionMap(1), 0), voxels);
  EXPECT_EQ(count(filter->GetAttentionMap(8), 0), voxels);
}

TEST(CoarseAttentionFilter, NetworkModeRefusesUnknownOrgansBadDevicesNaNAndBadFiles)
{
  auto             source = Source::New();
  Source::SizeType size{ { 32, 32, 16 } };
  source->SetSize(size);
  auto model = TinyModel();
  auto expectError = [](auto & filter, const std::string & text) {
    try
    {
      filter->Update();
      ADD_FAILURE() << "no exception; expected one mentioning '" << text << "'";
    }
    catch (const itk::ExceptionObject & e)
    {
      EXPECT_NE(std::string(e.GetDescription()).find(text), std::string::npos) << e.GetDescription();
    }
  };

  auto unknown = itk::CoarseAttentionFilter<CT, Labels>::New();
  unknown->SetInput(source->GetOutput());
  unknown->SetModel(model);
  unknown->SetOrganLabels({ 1, 3 });
  expectError(unknown, "not one of the model's 4 organs");

  auto device = itk::CoarseAttentionFilter<CT, Labels>::New();
  device->SetInput(source->GetOutput());
  device->SetModel(model);
  device->SetDevice("gpu0");
  expectError(device, "Device");
  if (!agcl::CudaAvailable())
  {
    device->SetDevice("cuda");
    expectError(device, "cuda");
  }

  auto nan = FloatImage::New();
  nan->SetRegions(FloatImage::RegionType(FloatImage::SizeType{ { 16, 16, 8 } }));
  nan->Allocate();
  nan->FillBuffer(0.0f);
  nan->SetPixel({ { 3, 4, 5 } }, std::numeric_limits<float>::quiet_NaN());
  auto nanFilter = FloatFilter::New();
  nanFilter->SetInput(nan);
  nanFilter->SetModel(model);
  expectError(nanFilter, "voxel [3, 4, 5]");

  const std::string garbage = ::testing::TempDir() + "agcl-garbage.agcl";
  {
    std::ofstream out(garbage, std::ios::binary);
    out << "this is not a model";
  }
  auto fromFile = itk::CoarseAttentionFilter<CT, Labels>::New();
  try
  {
    fromFile->SetModelFileName(garbage);
    ADD_FAILURE() << "a garbage model file was accepted";
  }
  catch (const itk::ExceptionObject & e)
  {
    EXPECT_NE(std::string(e.GetDescription()).find(garbage), std::string::npos) << e.GetDescription();
  }
  std::remove(garbage.c_str());
}
