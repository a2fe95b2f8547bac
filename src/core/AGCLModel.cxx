/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/AGCLModel.h"

#include "Checks.h"

#include <torch/torch.h>

namespace agcl {

AGCLModel::AGCLModel(ModelConfig config)
  : m_Config(std::move(config))
{
  m_Config.Validate();
  m_Coarse = CoarseSegmentationNet(CoarseSegmentationNetOptions()
                                     .in_channels(1)
                                     .classes(static_cast<int64_t>(m_Config.organs.size()) + 1)
                                     .base_channels(m_Config.coarse_base_channels)
                                     .levels(m_Config.coarse_levels));
  m_Encoder = ResNetEncoder(ResNetEncoderOptions()
                              .depth(m_Config.encoder_depth)
                              .in_channels(2)
                              .base_width(m_Config.encoder_width)
                              .output_stride(m_Config.output_stride));
  m_Decoder = ASPPDecoder(ASPPDecoderOptions(m_Encoder->HighLevelChannels(), m_Encoder->LowLevelChannels())
                            .channels(m_Config.decoder_channels)
                            .low_level_projection(m_Config.decoder_low_level_projection)
                            .rates(m_Config.decoder_rates));
}

ModelBundle
AGCLModel::ToBundle() const
{
  ModelBundle bundle;
  bundle.config = m_Config.ToJson();
  bundle.AddModule("coarse", *m_Coarse);
  bundle.AddModule("encoder", *m_Encoder);
  bundle.AddModule("decoder", *m_Decoder);
  return bundle;
}

void
AGCLModel::Save(const std::string & path) const
{
  ToBundle().Save(path);
}

AGCLModel
AGCLModel::FromBundle(const ModelBundle & bundle)
{
  AGCLModel model(ModelConfig::FromJson(bundle.config));
  bundle.LoadInto("coarse", *model.m_Coarse);
  bundle.LoadInto("encoder", *model.m_Encoder);
  bundle.LoadInto("decoder", *model.m_Decoder);
  return model;
}

AGCLModel
AGCLModel::Load(const std::string & path)
{
  const ModelBundle bundle = ModelBundle::Load(path);
  try
  {
    return FromBundle(bundle);
  }
  catch (const ModelBundleError & e)
  {
    throw ModelBundleError(path + ": " + e.what());
  }
}

at::Tensor
AGCLModel::PredictCoarseClasses(const at::Tensor & volume, const c10::Device & device)
{
  detail::RequireFloating(volume, 3, "AGCLModel::PredictCoarseClasses", "volume", "[D, H, W] volume");
  detail::Require(volume.numel() > 0, "AGCLModel::PredictCoarseClasses", "the volume is empty");
  torch::NoGradGuard noGrad;
  m_Coarse->to(device);
  m_Coarse->eval();
  const int64_t          multiple = m_Coarse->SizeMultiple();
  std::vector<int64_t>   padding; // F::pad order: last dimension first
  for (int64_t d = 2; d >= 0; --d)
  {
    const int64_t size = volume.size(d);
    padding.push_back(0);
    padding.push_back((size + multiple - 1) / multiple * multiple - size);
  }
  const torch::Tensor input = torch::constant_pad_nd(volume.to(device, torch::kFloat), padding, 0.0).unsqueeze(0).unsqueeze(0);
  const torch::Tensor classes = m_Coarse->forward(input).argmax(1)[0];
  return classes.slice(0, 0, volume.size(0))
    .slice(1, 0, volume.size(1))
    .slice(2, 0, volume.size(2))
    .to(torch::kCPU, torch::kByte)
    .contiguous();
}

} // namespace agcl
