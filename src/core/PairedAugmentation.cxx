/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/PairedAugmentation.h"

#include "Checks.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

namespace agcl {

PairedAugmentation::PairedAugmentation(PairedAugmentationOptions options)
  : m_Options(options)
{
  const std::string where = "PairedAugmentation";
  detail::Require(options.min_area() > 0 && options.min_area() <= options.max_area() && options.max_area() <= 1,
                  where,
                  "expected 0 < min_area <= max_area <= 1");
  detail::Require(options.min_aspect() > 0 && options.min_aspect() <= options.max_aspect(),
                  where,
                  "expected 0 < min_aspect <= max_aspect");
  detail::Require(options.max_area() * std::max(options.max_aspect(), 1.0 / options.min_aspect()) <= 1.0,
                  where,
                  "max_area and the aspect range make crops wider than the patch");
  detail::Require(options.max_rotation_degrees() >= 0 && options.max_rotation_degrees() <= 180,
                  where,
                  "max_rotation_degrees must lie in 0..180");
  detail::Require(options.image_channels() >= 0, where, "image_channels must be >= 0");
}

at::Tensor
PairedAugmentation::SampleParameters(int64_t n, at::Generator & generator) const
{
  detail::Require(n > 0, "PairedAugmentation", "number of views must be positive");
  const auto    options = torch::TensorOptions().dtype(torch::kDouble);
  torch::Tensor area = torch::empty({ n }, options).uniform_(m_Options.min_area(), m_Options.max_area(), generator);
  torch::Tensor logAspect =
    torch::empty({ n }, options)
      .uniform_(std::log(m_Options.min_aspect()), std::log(m_Options.max_aspect()) + 1e-300, generator);
  const double        maxAngle = m_Options.max_rotation_degrees();
  torch::Tensor       angle = torch::empty({ n }, options).uniform_(-maxAngle, maxAngle + 1e-300, generator);
  torch::Tensor       aspect = logAspect.exp();
  const torch::Tensor cw = (area * aspect).sqrt();
  const torch::Tensor ch = (area / aspect).sqrt();
  // Centre such that the crop [c - half, c + half] lies inside [-1, 1].
  torch::Tensor cx = (torch::empty({ n }, options).uniform_(-1.0, 1.0, generator)) * (1.0 - cw);
  torch::Tensor cy = (torch::empty({ n }, options).uniform_(-1.0, 1.0, generator)) * (1.0 - ch);
  return torch::stack({ area, aspect, angle, cx, cy }, 1);
}

at::Tensor
PairedAugmentation::AffineMatrices(const at::Tensor & parameters)
{
  detail::Require(parameters.defined() && parameters.dim() == 2 && parameters.size(1) == 5,
                  "PairedAugmentation",
                  "parameters has shape " + detail::ShapeText(parameters) + "; expected [n, 5]");
  const torch::Tensor p = parameters.to(torch::kCPU, torch::kDouble);
  const torch::Tensor area = p.select(1, 0), aspect = p.select(1, 1);
  const torch::Tensor theta = p.select(1, 2) * (M_PI / 180.0);
  const torch::Tensor cw = (area * aspect).sqrt(), ch = (area / aspect).sqrt();
  const torch::Tensor c = theta.cos(), s = theta.sin();
  const torch::Tensor row0 = torch::stack({ cw * c, -ch * s, p.select(1, 3) }, 1);
  const torch::Tensor row1 = torch::stack({ cw * s, ch * c, p.select(1, 4) }, 1);
  return torch::stack({ row0, row1 }, 1);
}

at::Tensor
PairedAugmentation::Apply(const at::Tensor & batch, const at::Tensor & parameters) const
{
  const std::string where = "PairedAugmentation";
  detail::RequireFloating(batch, 4, where, "batch", "[N, C, H, W] (image channels, then attention channels)");
  detail::Require(batch.size(0) > 0 && batch.size(1) >= std::max<int64_t>(1, m_Options.image_channels()) &&
                    batch.size(2) > 0 && batch.size(3) > 0,
                  where,
                  "batch has shape " + detail::ShapeText(batch) + "; expected [N, C, H, W] with N >= 1 and C >= " +
                    std::to_string(std::max<int64_t>(1, m_Options.image_channels())));
  detail::Require(parameters.defined() && parameters.dim() == 2 && parameters.size(0) == batch.size(0),
                  where,
                  "parameters has shape " + detail::ShapeText(parameters) + "; expected [" +
                    std::to_string(batch.size(0)) + ", 5]");
  if (m_Options.check_finite())
  {
    detail::RequireFinite(batch, where, "batch");
  }
  // grid_sample has no bf16/half CPU kernels in 1.13: sample in float32 (or float64), cast back.
  const auto          workType = batch.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  const torch::Tensor input = batch.to(workType);
  const torch::Tensor theta = AffineMatrices(parameters).to(batch.device(), workType);
  namespace F = torch::nn::functional;
  const torch::Tensor grid = F::affine_grid(theta, input.sizes(), /*align_corners=*/false);
  torch::Tensor       out = F::grid_sample(
    input, grid, F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false));
  const int64_t imageChannels = std::min(m_Options.image_channels(), batch.size(1));
  if (imageChannels < batch.size(1))
  {
    torch::Tensor attention = out.slice(1, imageChannels);
    out = torch::cat({ out.slice(1, 0, imageChannels), attention.ge(0.5).to(workType) }, 1);
  }
  return out.to(batch.scalar_type());
}

at::Tensor
PairedAugmentation::Forward(const at::Tensor & batch, at::Generator & generator) const
{
  detail::RequireFloating(batch, 4, "PairedAugmentation", "batch", "[N, C, H, W]");
  const int64_t       n = batch.size(0);
  const torch::Tensor parameters = SampleParameters(2 * n, generator);
  return Apply(torch::cat({ batch, batch }, 0), parameters);
}

at::Tensor
PairedAugmentation::Forward(const at::Tensor & batch, uint64_t seed) const
{
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  return Forward(batch, generator);
}

} // namespace agcl
