/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/AttentionMap.h"

#include <ATen/Parallel.h>
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

// The same minimum on the CPU as one fused loop, without the temporaries of the tensor version
// (the same sums in the same precision, so the same values): the volume as [outer, length,
// inner], each output row g[o, i, :] the minimum of the rows f[o, i + t, :] + cost[t].
torch::Tensor
MinimumAlongAxisCpu(const torch::Tensor & f, int64_t axis, double step2, int64_t reach)
{
  const int64_t length = f.size(axis);
  reach = std::min(reach, length - 1);
  int64_t outer = 1, inner = 1;
  for (int64_t a = 0; a < axis; ++a)
    outer *= f.size(a);
  for (int64_t a = axis + 1; a < f.dim(); ++a)
    inner *= f.size(a);
  const torch::Tensor source = f.contiguous();
  torch::Tensor       g = torch::empty_like(source);
  std::vector<double> cost(static_cast<size_t>(reach) + 1);
  for (int64_t t = 0; t <= reach; ++t)
    cost[t] = step2 * static_cast<double>(t) * static_cast<double>(t);
  const double * in = source.data_ptr<double>();
  double *       out = g.data_ptr<double>();
  at::parallel_for(
    0, outer * length, 1 + 32768 / std::max<int64_t>(1, inner * (2 * reach + 1)), [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row)
      {
        const int64_t  o = row / length, i = row % length;
        double *       dst = out + row * inner;
        const double * self = in + row * inner;
        std::copy(self, self + inner, dst);
        for (int64_t t = 1; t <= reach; ++t)
        {
          const double c = cost[t];
          if (i + t < length)
          {
            const double * next = in + (o * length + i + t) * inner;
            for (int64_t k = 0; k < inner; ++k)
              dst[k] = std::min(dst[k], next[k] + c);
          }
          if (i - t >= 0)
          {
            const double * previous = in + (o * length + i - t) * inner;
            for (int64_t k = 0; k < inner; ++k)
              dst[k] = std::min(dst[k], previous[k] + c);
          }
        }
      }
    });
  return g;
}

// The first axis on the CPU, straight from the mask: along each row of the last axis, the
// offset t to the nearest organ voxel (two sweeps), giving cost[t] = step2 t^2 within the reach
// and infinity beyond: the minimum of 0 + cost[t] over the organ voxels, as the tensor version.
torch::Tensor
NearestAlongLastAxisCpu(const torch::Tensor & organ, double step2, int64_t reach)
{
  const int64_t length = organ.size(2), rows = organ.size(0) * organ.size(1);
  reach = std::min(reach, length - 1);
  torch::Tensor  g = torch::empty(organ.sizes(), organ.options().dtype(torch::kDouble));
  const bool *   in = organ.data_ptr<bool>();
  double *       out = g.data_ptr<double>();
  constexpr auto far = std::numeric_limits<int64_t>::max() / 4;
  at::parallel_for(0, rows, 1 + 32768 / std::max<int64_t>(1, length), [&](int64_t begin, int64_t end) {
    std::vector<int64_t> before(static_cast<size_t>(length));
    for (int64_t row = begin; row < end; ++row)
    {
      const bool * line = in + row * length;
      double *     dst = out + row * length;
      int64_t      last = -far;
      for (int64_t i = 0; i < length; ++i)
      {
        last = line[i] ? i : last;
        before[i] = i - last;
      }
      int64_t next = far;
      for (int64_t i = length - 1; i >= 0; --i)
      {
        next = line[i] ? i : next;
        const int64_t t = std::min(before[i], next - i);
        dst[i] = t <= reach ? step2 * static_cast<double>(t) * static_cast<double>(t)
                            : std::numeric_limits<double>::infinity();
      }
    }
  });
  return g;
}
} // namespace

at::Tensor
GrowByMargin(const at::Tensor & mask, const std::array<double, 3> & spacing_mm, double margin_mm, MarginKernels kernels)
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
  if (kernels == MarginKernels::CpuLoop && !mask.is_cpu())
  {
    throw std::invalid_argument("GrowByMargin: the CPU loop was asked for a mask on " + mask.device().str());
  }
  const bool cpuLoop = kernels == MarginKernels::CpuLoop || (kernels == MarginKernels::Automatic && mask.is_cpu());
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
  // Axis 2 (W) first, then 1 and 0, in both kernels: the same sums in the same order.
  torch::Tensor squared;
  if (cpuLoop)
  {
    squared = NearestAlongLastAxisCpu(box.contiguous(), spacing_mm[2] * spacing_mm[2], reach[2]);
  }
  else
  {
    squared = torch::full(box.sizes(), std::numeric_limits<double>::infinity(), box.options().dtype(torch::kDouble));
    squared.masked_fill_(box, 0.0);
    squared = MinimumAlongAxis(squared, 2, spacing_mm[2] * spacing_mm[2], reach[2]);
  }
  for (int64_t axis = 1; axis >= 0; --axis)
  {
    const double step2 = spacing_mm[axis] * spacing_mm[axis];
    squared = cpuLoop ? MinimumAlongAxisCpu(squared, axis, step2, reach[axis])
                      : MinimumAlongAxis(squared, axis, step2, reach[axis]);
  }
  const double threshold = margin_mm + 1e-6;
  result.narrow(0, first[0], size[0])
    .narrow(1, first[1], size[1])
    .narrow(2, first[2], size[2])
    .copy_(squared.le(threshold * threshold));
  return result;
}

} // namespace agcl
