/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/AGCLModel.h"
#include "agcl/ModuleOnDevice.h"

#include "Checks.h"

#include <torch/torch.h>

#if defined(__GLIBC__)
#  include <malloc.h>
#endif

namespace agcl {

AGCLModel::AGCLModel(ModelConfig config)
  : m_Config(std::move(config))
{
  m_Config.Validate();
  m_Coarse = CoarseSegmentationNet(CoarseSegmentationNetOptions()
                                     .in_channels(m_Config.image_channels)
                                     .planar(m_Config.image_dimensions == 2)
                                     .classes(static_cast<int64_t>(m_Config.organs.size()) + 1)
                                     .base_channels(m_Config.coarse_base_channels)
                                     .levels(m_Config.coarse_levels)
                                     .coordinates(m_Config.coarse_coordinates));
  m_Encoder = ResNetEncoder(ResNetEncoderOptions()
                              .depth(m_Config.encoder_depth)
                              .in_channels(m_Config.image_channels + 1)
                              .base_width(m_Config.encoder_width)
                              .output_stride(m_Config.output_stride));
  m_Decoder = ASPPDecoder(ASPPDecoderOptions(m_Encoder->HighLevelChannels(), m_Encoder->LowLevelChannels())
                            .channels(m_Config.decoder_channels)
                            .low_level_projection(m_Config.decoder_low_level_projection)
                            .rates(m_Config.decoder_rates)
                            .stem_channels(m_Config.decoder_output_stride == 2 ? m_Encoder->StemChannels() : 0));
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
  const ModelConfig config = ModelConfig::FromJson(bundle.config);
  // Every parameter must come from the bundle as float32: a configuration that declares larger
  // networks than the bundle's weights can fill is refused before the networks are built.
  uint64_t weightBytes = 0;
  for (const auto & [name, tensor] : bundle.Tensors())
    weightBytes += static_cast<uint64_t>(tensor.numel()) * tensor.element_size();
  const uint64_t parameters = config.MinimumParameterCount();
  if (parameters * 4 > weightBytes)
    throw ModelBundleError("model bundle: its configuration declares networks of at least " +
                           std::to_string(parameters) + " parameters (" + std::to_string(parameters * 4) +
                           " bytes), but it holds " + std::to_string(weightBytes) + " bytes of weights");
  AGCLModel model(config);
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

namespace {
// The network on one [C, d, H, W] window, zero-padded to its size multiple (D only when it is
// not planar): classes [d, H, W] and seeds and probabilities [O, d, H, W] (uint8, on the CPU;
// see AGCLModel::CoarsePrediction).
AGCLModel::CoarsePrediction
PredictionOf(CoarseSegmentationNet & net, const torch::Tensor & volume, const torch::Device & device, double floor)
{
  const int64_t        multiple = net->SizeMultiple();
  std::vector<int64_t> padding; // constant_pad_nd order: last dimension first
  for (int64_t d = 3; d >= 1; --d)
  {
    const int64_t size = volume.size(d);
    const int64_t m = d == 1 && net->options().planar() ? 1 : multiple;
    padding.push_back(0);
    padding.push_back((size + m - 1) / m * m - size);
  }
  const torch::Tensor input = torch::constant_pad_nd(volume.to(device, torch::kFloat), padding, 0.0).unsqueeze(0);
  const torch::Tensor logits =
    net->forward(input)[0].slice(1, 0, volume.size(1)).slice(2, 0, volume.size(2)).slice(3, 0, volume.size(3));
  const torch::Tensor classes = logits.argmax(0);
  const int64_t       organs = logits.size(0) - 1;
  const torch::Tensor organProbability = torch::softmax(logits, 0).slice(0, 1);
  torch::Tensor       seeds =
    classes.unsqueeze(0).eq(torch::arange(1, organs + 1, classes.options()).view({ organs, 1, 1, 1 }));
  if (floor > 0.0)
  {
    // Recall over precision (the attention gate decides what the fine stage can ever see): an
    // organ's attention also grows from voxels where it is not the most likely class but still
    // has probability >= floor.
    seeds = seeds.logical_or(organProbability.ge(floor));
  }
  // Quantised to 0..255 (probability x 255, rounded), as the segmentation's probability maps.
  const torch::Tensor quantised = organProbability.mul(255.0).round_().clamp_(0.0, 255.0).to(torch::kByte);
  return { classes.to(torch::kCPU, torch::kByte), seeds.to(torch::kCPU, torch::kByte), quantised.to(torch::kCPU) };
}
} // namespace

at::Tensor
AGCLModel::PredictCoarseClasses(const at::Tensor & volume, const c10::Device & device)
{
  return PredictCoarse(volume, device).classes;
}

AGCLModel::CoarsePrediction
AGCLModel::PredictCoarse(const at::Tensor & input, const c10::Device & device)
{
  const std::string where = "AGCLModel::PredictCoarseClasses";
  const int64_t     channels = m_Config.image_channels;
  const std::string expected = channels == 1 ? std::string("[D, H, W] or [1, D, H, W]")
                                             : "[" + std::to_string(channels) + ", D, H, W] (the model's channels)";
  detail::Require(input.defined() && (input.dim() == 4 || (input.dim() == 3 && channels == 1)) &&
                    input.is_floating_point(),
                  where,
                  "volume: expected a floating-point " + expected + ", got " + detail::ShapeText(input));
  const at::Tensor volume = input.dim() == 3 ? input.unsqueeze(0) : input; // [C, D, H, W]
  detail::Require(
    volume.size(0) == channels, where, "volume has shape " + detail::ShapeText(input) + "; expected " + expected);
  detail::Require(volume.numel() > 0, where, "the volume is empty");
  torch::NoGradGuard   noGrad;
  const ModuleOnDevice use(*m_Coarse, device); // shared by concurrent runs on one device
  const double         floor = m_Config.coarse_attention_probability;
  const int64_t        depth = volume.size(1), window = m_Config.coarse_window_slices;
  if (window == 0 || depth <= window)
  {
    CoarsePrediction whole = PredictionOf(m_Coarse, volume, device, floor);
    return { whole.classes.contiguous(), whole.seeds.contiguous(), whole.probabilities.contiguous() };
  }
  const int64_t    halo = window / 4;
  const int64_t    organs = static_cast<int64_t>(m_Config.organs.size());
  const auto       bytes = torch::TensorOptions().dtype(torch::kByte);
  CoarsePrediction result{ torch::empty({ volume.size(1), volume.size(2), volume.size(3) }, bytes),
                           torch::empty({ organs, volume.size(1), volume.size(2), volume.size(3) }, bytes),
                           torch::empty({ organs, volume.size(1), volume.size(2), volume.size(3) }, bytes) };
  int64_t          done = 0; // slices [0, done) are final
  for (int64_t start = 0;;)
  {
    const int64_t end = std::min(depth, start + window);
    start = end - window; // every window is `window` slices long
    const int64_t          keepEnd = end == depth ? depth : end - halo;
    const CoarsePrediction part = PredictionOf(m_Coarse, volume.slice(1, start, end), device, floor);
    result.classes.slice(0, done, keepEnd).copy_(part.classes.slice(0, done - start, keepEnd - start));
    result.seeds.slice(1, done, keepEnd).copy_(part.seeds.slice(1, done - start, keepEnd - start));
    result.probabilities.slice(1, done, keepEnd).copy_(part.probabilities.slice(1, done - start, keepEnd - start));
    done = keepEnd;
#if defined(__GLIBC__)
    malloc_trim(0); // hand the window's freed workspace back, so windows do not pile up in the heap
#endif
    if (end == depth)
    {
      break;
    }
    start = keepEnd - halo; // the next window's first kept slice (start + halo) is keepEnd
  }
  return result;
}

} // namespace agcl
