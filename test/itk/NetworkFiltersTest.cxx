/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkASPPDecoderFilter.h"
#include "itkAGCLEncoderFilter.h"
#include "itkAbdominalPhantomImageSource.h"
#include "itkCoarseAttentionFilter.h"
#include "itkLabelFusionFilter.h"
#include "itkQueryPatchSamplerFilter.h"

#include "agcl/Device.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

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
