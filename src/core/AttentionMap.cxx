/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/AttentionMap.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace agcl {

namespace {
// The running minimum along `axis`: g(i) = min over |t| <= reach of f(i + t) + step2 t^2.
torch::Tensor
MinimumAlongAxis(const torch::Tensor & f, int64_t axis, double step2, int64_t reach)
{
  const int64_t length = f.size(axis);
  reach = std::min(reach, length - 1);
  torch::Tensor g = f.clone();
  for (int64_t t = 1; t <= reach; ++t)
  {
    const double cost = step2 * static_cast<double>(t) * static_cast<double>(t);
    // g[i] against f[i + t] (i < length - t) and g[i + t] against f[i].
    auto lower = g.narrow(axis, 0, length - t);
    auto upper = g.narrow(axis, t, length - t);
    torch::minimum_out(lower, lower, f.narrow(axis, t, length - t) + cost);
    torch::minimum_out(upper, upper, f.narrow(axis, 0, length - t) + cost);
  }
  return g;
}
} // namespace

at::Tensor
GrowByMargin(const at::Tensor & mask, const std::array<double, 3> & spacing_mm, double margin_mm)
{
  if (!mask.defined() || mask.dim() != 3)
  {
    std::ostringstream message;
    message << "GrowByMargin: expected a 3-D mask [D, H, W], got "
            << (mask.defined() ? std::to_string(mask.dim()) + "-D" : std::string("none"));
    throw std::invalid_argument(message.str());
  }
  for (const double s : spacing_mm)
  {
    if (!std::isfinite(s) || !(s > 0.0))
    {
      throw std::invalid_argument("GrowByMargin: spacing " + std::to_string(s) + " mm; expected finite and > 0");
    }
  }
  if (!std::isfinite(margin_mm) || !(margin_mm >= 0.0))
  {
    throw std::invalid_argument("GrowByMargin: margin " + std::to_string(margin_mm) + " mm; expected finite and >= 0");
  }
  torch::NoGradGuard  noGrad;
  const torch::Tensor organ = mask.scalar_type() == torch::kBool ? mask : mask.ne(0);
  torch::Tensor       result = torch::zeros(organ.sizes(), organ.options().dtype(torch::kBool));
  if (organ.numel() == 0)
  {
    return result;
  }
  // The mask's bounding box (one read-back of 6 numbers), grown by the margin: beyond it no
  // voxel is within the margin. reach[a]: the largest offset along axis a that can matter.
  std::array<int64_t, 3> first{}, size{}, reach{};
  for (int64_t axis = 0; axis < 3; ++axis)
  {
    std::vector<int64_t> others;
    for (int64_t a = 0; a < 3; ++a)
      if (a != axis)
        others.push_back(a);
    const torch::Tensor present = organ.any(others[1]).any(others[0]).nonzero().cpu();
    if (present.numel() == 0)
    {
      return result; // no organ voxel: an empty region
    }
    reach[axis] =
      static_cast<int64_t>(std::min(std::ceil(margin_mm / spacing_mm[axis]), static_cast<double>(organ.size(axis))));
    first[axis] = std::max<int64_t>(0, present[0].item<int64_t>() - reach[axis]);
    const int64_t last = std::min<int64_t>(organ.size(axis) - 1, present[-1].item<int64_t>() + reach[axis]);
    size[axis] = last - first[axis] + 1;
  }
  const torch::Tensor box =
    organ.narrow(0, first[0], size[0]).narrow(1, first[1], size[1]).narrow(2, first[2], size[2]);
  torch::Tensor squared =
    torch::full(box.sizes(), std::numeric_limits<double>::infinity(), box.options().dtype(torch::kDouble));
  squared.masked_fill_(box, 0.0);
  for (int64_t axis = 0; axis < 3; ++axis)
  {
    squared = MinimumAlongAxis(squared, axis, spacing_mm[axis] * spacing_mm[axis], reach[axis]);
  }
  const double threshold = margin_mm + 1e-6;
  result.narrow(0, first[0], size[0])
    .narrow(1, first[1], size[1])
    .narrow(2, first[2], size[2])
    .copy_(squared.le(threshold * threshold));
  return result;
}

} // namespace agcl
