/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/CoarseSegmentationNet.h"

#include "Checks.h"

#include <torch/torch.h>

namespace agcl {

namespace {
namespace nn = torch::nn;

// Two conv - InstanceNorm - ReLU blocks; planar: 1 x 3 x 3 kernels (a 2D network per slice;
// instance norm over one slice's H x W is InstanceNorm2d).
nn::Sequential
DoubleConv(int64_t in, int64_t out, bool planar)
{
  const std::vector<int64_t> kernel = planar ? std::vector<int64_t>{ 1, 3, 3 } : std::vector<int64_t>{ 3, 3, 3 };
  const std::vector<int64_t> padding = planar ? std::vector<int64_t>{ 0, 1, 1 } : std::vector<int64_t>{ 1, 1, 1 };
  auto                       conv = [&](int64_t from, int64_t to) {
    return nn::Conv3d(
      nn::Conv3dOptions(from, to, torch::IntArrayRef(kernel)).padding(torch::IntArrayRef(padding)).bias(false));
  };
  return nn::Sequential(conv(in, out),
                        nn::InstanceNorm3d(nn::InstanceNorm3dOptions(out).affine(true)),
                        nn::ReLU(),
                        conv(out, out),
                        nn::InstanceNorm3d(nn::InstanceNorm3dOptions(out).affine(true)),
                        nn::ReLU());
}
} // namespace

CoarseSegmentationNetImpl::CoarseSegmentationNetImpl(CoarseSegmentationNetOptions options)
  : m_Options(options)
{
  detail::Require(options.in_channels() >= 1 && options.classes() >= 2 && options.base_channels() >= 1 &&
                    options.levels() >= 1 && options.levels() <= 6,
                  "CoarseSegmentationNet",
                  "expected in_channels >= 1, classes >= 2, base_channels >= 1, levels 1..6");
  m_Down = register_module("down", nn::ModuleList());
  m_Up = register_module("up", nn::ModuleList());
  int64_t in = options.in_channels() + (options.coordinates() ? 2 : 0);
  for (int64_t level = 0; level < options.levels(); ++level)
  {
    const int64_t out = options.base_channels() << level;
    m_Down->push_back(DoubleConv(in, out, options.planar()));
    in = out;
  }
  for (int64_t level = options.levels() - 2; level >= 0; --level)
  {
    const int64_t skip = options.base_channels() << level;
    m_Up->push_back(DoubleConv(in + skip, skip, options.planar()));
    in = skip;
  }
  m_Classifier = register_module("classifier", nn::Conv3d(nn::Conv3dOptions(in, options.classes(), 1)));
  for (auto & module : modules(false))
  {
    if (auto * conv = module->as<nn::Conv3d>())
    {
      nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
    }
  }
}

int64_t
CoarseSegmentationNetImpl::SizeMultiple() const
{
  return int64_t{ 1 } << (m_Options.levels() - 1);
}

torch::Tensor
CoarseSegmentationNetImpl::forward(const torch::Tensor & volume)
{
  const std::string where = "CoarseSegmentationNet";
  const int64_t     multiple = SizeMultiple();
  const bool        planar = m_Options.planar();
  const std::string expected = "[N, " + std::to_string(m_Options.in_channels()) + ", D, H, W] with " +
                               (planar ? "H and W" : "D, H and W") + " multiples of " + std::to_string(multiple);
  detail::RequireFloating(volume, 5, where, "volume", expected);
  bool ok = volume.size(1) == m_Options.in_channels();
  for (int d = 2; d < 5; ++d)
  {
    ok = ok && volume.size(d) > 0 && (volume.size(d) % multiple == 0 || (planar && d == 2));
  }
  detail::Require(ok, where, "volume has shape " + detail::ShapeText(volume) + "; expected " + expected);

  std::vector<torch::Tensor> skips;
  // Planar: each slice is an image of its own (slices folded into the batch), so that instance
  // normalisation takes its statistics per slice, as a 2D network's would.
  const int64_t slices = volume.size(2);
  torch::Tensor input = volume;
  if (planar && slices > 1)
  {
    input =
      volume.transpose(1, 2).reshape({ volume.size(0) * slices, volume.size(1), 1, volume.size(3), volume.size(4) });
  }
  torch::Tensor x = input;
  if (m_Options.coordinates())
  {
    const int64_t       n = input.size(0), d = input.size(2), h = input.size(3), w = input.size(4);
    const auto          options = input.options();
    const torch::Tensor xs = (torch::arange(w, options) * 2.0 + 1.0) / static_cast<double>(w) - 1.0;
    const torch::Tensor ys = (torch::arange(h, options) * 2.0 + 1.0) / static_cast<double>(h) - 1.0;
    x = torch::cat({ input,
                     xs.view({ 1, 1, 1, 1, w }).expand({ n, 1, d, h, w }),
                     ys.view({ 1, 1, 1, h, 1 }).expand({ n, 1, d, h, w }) },
                   1);
  }
  for (size_t level = 0; level < m_Down->size(); ++level)
  {
    if (level > 0)
    {
      x = planar ? torch::max_pool3d(x, { 1, 2, 2 }) : torch::max_pool3d(x, { 2, 2, 2 });
    }
    x = m_Down[level]->as<nn::Sequential>()->forward(x);
    skips.push_back(x);
  }
  for (size_t i = 0; i < m_Up->size(); ++i)
  {
    const torch::Tensor & skip = skips[skips.size() - 2 - i];
    x = nn::functional::interpolate(x,
                                    nn::functional::InterpolateFuncOptions()
                                      .size(std::vector<int64_t>{ skip.size(2), skip.size(3), skip.size(4) })
                                      .mode(torch::kTrilinear)
                                      .align_corners(false));
    x = m_Up[i]->as<nn::Sequential>()->forward(torch::cat({ x, skip }, 1));
  }
  x = m_Classifier(x);
  if (planar && slices > 1)
  {
    x = x.reshape({ volume.size(0), slices, x.size(1), x.size(3), x.size(4) }).transpose(1, 2);
  }
  return x;
}

} // namespace agcl
