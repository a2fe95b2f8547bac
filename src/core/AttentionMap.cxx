/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/AttentionMap.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstring>
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
// inner], each output row g[o, i, :] the minimum of the rows f[o, i + t, :] + cost[|t|] over
// |t| < cost.size(). T: double (squared distances in mm^2) or int16_t (the integer plane below).
// A buffer of `sizes` and `dtype` in `reused` when given (its storage kept when large enough:
// no fresh pages, which cost more than the arithmetic on a VM), else a new one.
torch::Tensor
Buffer(torch::Tensor * reused, at::IntArrayRef sizes, torch::ScalarType dtype)
{
  if (reused == nullptr)
    return torch::empty(sizes, torch::TensorOptions().dtype(dtype));
  if (!reused->defined() || reused->scalar_type() != dtype)
    *reused = torch::empty(sizes, torch::TensorOptions().dtype(dtype));
  else
    reused->resize_(sizes);
  return *reused;
}

template <typename T>
torch::Tensor
MinimumAlongAxisCpu(const torch::Tensor &  f,
                    int64_t                axis,
                    const std::vector<T> & cost,
                    torch::Tensor *        reused = nullptr)
{
  const int64_t length = f.size(axis);
  const int64_t reach = std::min<int64_t>(static_cast<int64_t>(cost.size()) - 1, length - 1);
  int64_t       outer = 1, inner = 1;
  for (int64_t a = 0; a < axis; ++a)
    outer *= f.size(a);
  for (int64_t a = axis + 1; a < f.dim(); ++a)
    inner *= f.size(a);
  const torch::Tensor source = f.contiguous();
  torch::Tensor       g = Buffer(reused, source.sizes(), source.scalar_type());
  const T *           in = source.data_ptr<T>();
  T *                 out = g.data_ptr<T>();
  at::parallel_for(
    0, outer * length, 1 + 32768 / std::max<int64_t>(1, inner * (2 * reach + 1)), [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row)
      {
        const int64_t o = row / length, i = row % length;
        T *           dst = out + row * inner;
        const T *     self = in + row * inner;
        const T       c0 = cost[0];
        for (int64_t k = 0; k < inner; ++k)
          dst[k] = static_cast<T>(self[k] + c0);
        for (int64_t t = 1; t <= reach; ++t)
        {
          const T c = cost[t];
          if (i + t < length)
          {
            const T * next = in + (o * length + i + t) * inner;
            for (int64_t k = 0; k < inner; ++k)
              dst[k] = std::min(dst[k], static_cast<T>(next[k] + c));
          }
          if (i - t >= 0)
          {
            const T * previous = in + (o * length + i - t) * inner;
            for (int64_t k = 0; k < inner; ++k)
              dst[k] = std::min(dst[k], static_cast<T>(previous[k] + c));
          }
        }
      }
    });
  return g;
}

// The first axis on the CPU, straight from the mask: along each row of the last axis, the
// offset t to the nearest organ voxel (two sweeps), giving cost[t] within the reach (t <
// cost.size()) and `far` beyond: the minimum of 0 + cost[t] over the organ voxels, as the tensor
// version computes it.
template <typename T>
torch::Tensor
NearestAlongLastAxisCpu(const torch::Tensor &  organ,
                        const std::vector<T> & cost,
                        T                      far,
                        torch::Tensor *        reused = nullptr)
{
  const int64_t  length = organ.size(2), rows = organ.size(0) * organ.size(1);
  const int64_t  reach = std::min<int64_t>(static_cast<int64_t>(cost.size()) - 1, length - 1);
  torch::Tensor  g = Buffer(reused, organ.sizes(), c10::CppTypeToScalarType<T>::value);
  const bool *   in = organ.data_ptr<bool>();
  T *            out = g.data_ptr<T>();
  constexpr auto none = std::numeric_limits<int64_t>::max() / 4;
  at::parallel_for(0, rows, 1 + 32768 / std::max<int64_t>(1, length), [&](int64_t begin, int64_t end) {
    std::vector<int64_t> before(static_cast<size_t>(length));
    for (int64_t row = begin; row < end; ++row)
    {
      const bool * line = in + row * length;
      T *          dst = out + row * length;
      int64_t      last = -none;
      for (int64_t i = 0; i < length; ++i)
      {
        last = line[i] ? i : last;
        before[i] = i - last;
      }
      int64_t next = none;
      for (int64_t i = length - 1; i >= 0; --i)
      {
        next = line[i] ? i : next;
        const int64_t t = std::min(before[i], next - i);
        dst[i] = t <= reach ? cost[t] : far;
      }
    }
  });
  return g;
}

std::vector<double>
SquaredSteps(double step2, int64_t reach)
{
  std::vector<double> cost(static_cast<size_t>(reach) + 1);
  for (int64_t t = 0; t <= reach; ++t)
    cost[t] = step2 * static_cast<double>(t) * static_cast<double>(t);
  return cost;
}

// The CPU region when H and W share their spacing s (a CT's axial plane): the in-plane squared
// distance is s^2 (tx^2 + ty^2) with integer offsets, so the W and H passes run exactly in 16-bit
// integers (tx^2 + ty^2 <= 2 * 90^2 < kFar; 8 lanes per SSE2 instruction instead of 2 doubles),
// and the D pass turns the rule s^2 q + s_D^2 tz^2 <= threshold^2 into one integer bound per
// offset, limit[tz] = the largest q that satisfies it in double: a voxel is in when q(z + tz) -
// limit[|tz|] <= 0 for some tz, a running minimum of the same kind.
constexpr int16_t kFar = 16384;
constexpr int64_t kMaxIntegerReach = 90;

void
IntegerPlaneRegion(const torch::Tensor &          box,
                   const std::array<double, 3> &  spacing,
                   const std::array<int64_t, 3> & reach,
                   double                         threshold,
                   torch::Tensor                  region,
                   MarginWorkspace *              workspace)
{
  auto squares = [](int64_t reachAlong) {
    std::vector<int16_t> cost(static_cast<size_t>(reachAlong) + 1);
    for (int64_t t = 0; t <= reachAlong; ++t)
      cost[t] = static_cast<int16_t>(t * t);
    return cost;
  };
  const torch::Tensor nearest =
    NearestAlongLastAxisCpu<int16_t>(box, squares(reach[2]), kFar, workspace ? &workspace->first : nullptr);
  const torch::Tensor q =
    MinimumAlongAxisCpu<int16_t>(nearest, 1, squares(reach[1]), workspace ? &workspace->second : nullptr);
  const double         plane2 = spacing[2] * spacing[2], axial2 = spacing[0] * spacing[0];
  const double         bound = threshold * threshold;
  std::vector<int16_t> negativeLimit(static_cast<size_t>(reach[0]) + 1);
  for (int64_t t = 0; t <= reach[0]; ++t)
  {
    const double rest = axial2 * static_cast<double>(t) * static_cast<double>(t);
    // The largest integer q in [-1, kFar - 1] with plane2 * q + rest <= bound, exactly as the
    // double comparison decides (start from the quotient, then step to the boundary).
    auto    fits = [&](int64_t value) { return plane2 * static_cast<double>(value) + rest <= bound; };
    int64_t limit =
      static_cast<int64_t>(std::floor(std::max(-1.0, std::min<double>(kFar - 1, (bound - rest) / plane2))));
    while (limit < kFar - 1 && fits(limit + 1))
      ++limit;
    while (limit >= 0 && !fits(limit))
      --limit;
    negativeLimit[t] = static_cast<int16_t>(-limit);
  }
  // The D pass, written straight into the region (a view of the result: rows contiguous).
  const int64_t   depth = q.size(0), height = q.size(1), width = q.size(2);
  const int16_t * in = q.data_ptr<int16_t>();
  bool *          out = region.data_ptr<bool>();
  const int64_t   stride0 = region.stride(0), stride1 = region.stride(1);
  at::parallel_for(
    0, depth * height, 1 + 32768 / std::max<int64_t>(1, width * (2 * reach[0] + 1)), [&](int64_t begin, int64_t end) {
      std::vector<int16_t> row(static_cast<size_t>(width));
      for (int64_t r = begin; r < end; ++r)
      {
        const int64_t   z = r / height, y = r % height;
        const int16_t   c0 = negativeLimit[0];
        const int16_t * self = in + r * width;
        for (int64_t k = 0; k < width; ++k)
          row[k] = static_cast<int16_t>(self[k] + c0);
        for (int64_t t = 1; t <= reach[0] && t < depth; ++t)
        {
          const int16_t c = negativeLimit[t];
          if (z + t < depth)
          {
            const int16_t * next = in + r * width + t * height * width;
            for (int64_t k = 0; k < width; ++k)
              row[k] = std::min(row[k], static_cast<int16_t>(next[k] + c));
          }
          if (z - t >= 0)
          {
            const int16_t * previous = in + r * width - t * height * width;
            for (int64_t k = 0; k < width; ++k)
              row[k] = std::min(row[k], static_cast<int16_t>(previous[k] + c));
          }
        }
        bool * line = out + z * stride0 + y * stride1;
        for (int64_t k = 0; k < width; ++k)
          line[k] = row[k] <= 0;
      }
    });
}

// The bounding box [low, high] (inclusive) of the true voxels of `organ` [D, H, W] along each
// axis; false when there are none. Any device: a read-back of 6 numbers.
bool
BoundingBox(const torch::Tensor & organ, std::array<int64_t, 3> & low, std::array<int64_t, 3> & high)
{
  for (int64_t axis = 0; axis < 3; ++axis)
  {
    std::vector<int64_t> others;
    for (int64_t a = 0; a < 3; ++a)
      if (a != axis)
        others.push_back(a);
    const torch::Tensor present = organ.any(others[1]).any(others[0]).nonzero().cpu();
    if (present.numel() == 0)
      return false;
    low[axis] = present[0].item<int64_t>();
    high[axis] = present[-1].item<int64_t>();
  }
  return true;
}

// The same on the CPU for a contiguous bool mask, in one parallel pass over its rows (memchr
// for a row's first voxel, a backward scan for its last).
bool
BoundingBoxCpu(const torch::Tensor & organ, std::array<int64_t, 3> & low, std::array<int64_t, 3> & high)
{
  const int64_t depth = organ.size(0), height = organ.size(1), width = organ.size(2);
  const auto *  in = reinterpret_cast<const unsigned char *>(organ.data_ptr<bool>());
  // Per slice: lowest/highest row and column with an organ voxel (height: none).
  std::vector<std::array<int64_t, 4>> slices(static_cast<size_t>(depth));
  at::parallel_for(0, depth, 1 + 65536 / std::max<int64_t>(1, height * width), [&](int64_t begin, int64_t end) {
    for (int64_t z = begin; z < end; ++z)
    {
      std::array<int64_t, 4> box{ height, -1, width, -1 };
      for (int64_t y = 0; y < height; ++y)
      {
        const unsigned char * line = in + (z * height + y) * width;
        const void *          hit = std::memchr(line, 1, static_cast<size_t>(width));
        if (hit == nullptr)
          continue;
        int64_t last = width - 1;
        while (line[last] == 0)
          --last;
        box = { std::min(box[0], y),
                y,
                std::min(box[2], static_cast<const unsigned char *>(hit) - line),
                std::max(box[3], last) };
      }
      slices[z] = box;
    }
  });
  bool any = false;
  low = { depth, height, width };
  high = { -1, -1, -1 };
  for (int64_t z = 0; z < depth; ++z)
  {
    if (slices[z][1] < 0)
      continue;
    any = true;
    low = { std::min(low[0], z), std::min(low[1], slices[z][0]), std::min(low[2], slices[z][2]) };
    high = { z, std::max(high[1], slices[z][1]), std::max(high[2], slices[z][3]) };
  }
  return any;
}
} // namespace

at::Tensor
GrowByMargin(const at::Tensor &            mask,
             const std::array<double, 3> & spacing_mm,
             double                        margin_mm,
             MarginKernels                 kernels,
             MarginWorkspace *             workspace)
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
  const bool          reuse = workspace != nullptr && organ.is_cpu();
  torch::Tensor       result = reuse ? Buffer(&workspace->region, organ.sizes(), torch::kBool).zero_()
                                     : torch::zeros(organ.sizes(), organ.options().dtype(torch::kBool));
  if (organ.numel() == 0)
  {
    return result;
  }
  // The mask's bounding box, grown by the margin: beyond it no voxel is within the margin.
  // reach[a]: the largest offset along axis a that can matter.
  std::array<int64_t, 3> low{}, high{}, first{}, size{}, reach{};
  const torch::Tensor    source = cpuLoop ? organ.contiguous() : organ;
  if (!(cpuLoop ? BoundingBoxCpu(source, low, high) : BoundingBox(source, low, high)))
  {
    return result; // no organ voxel: an empty region
  }
  for (int64_t axis = 0; axis < 3; ++axis)
  {
    reach[axis] =
      static_cast<int64_t>(std::min(std::ceil(margin_mm / spacing_mm[axis]), static_cast<double>(organ.size(axis))));
    first[axis] = std::max<int64_t>(0, low[axis] - reach[axis]);
    const int64_t last = std::min<int64_t>(organ.size(axis) - 1, high[axis] + reach[axis]);
    size[axis] = last - first[axis] + 1;
  }
  const torch::Tensor box =
    source.narrow(0, first[0], size[0]).narrow(1, first[1], size[1]).narrow(2, first[2], size[2]);
  const double threshold = margin_mm + 1e-6;
  auto         insideBox = [&]() {
    return result.narrow(0, first[0], size[0]).narrow(1, first[1], size[1]).narrow(2, first[2], size[2]);
  };
  std::array<int64_t, 3> clamped{}; // the reach within the box, as the kernels clamp it
  for (int64_t axis = 0; axis < 3; ++axis)
    clamped[axis] = std::min(reach[axis], size[axis] - 1);
  if (cpuLoop && spacing_mm[1] == spacing_mm[2] && clamped[1] <= kMaxIntegerReach && clamped[2] <= kMaxIntegerReach)
  {
    IntegerPlaneRegion(box.contiguous(), spacing_mm, clamped, threshold, insideBox(), reuse ? workspace : nullptr);
    return result;
  }
  // Axis 2 (W) first, then 1 and 0, in both kernels: the same sums in the same order.
  torch::Tensor squared;
  if (cpuLoop)
  {
    squared = NearestAlongLastAxisCpu<double>(box.contiguous(),
                                              SquaredSteps(spacing_mm[2] * spacing_mm[2], clamped[2]),
                                              std::numeric_limits<double>::infinity());
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
    squared = cpuLoop ? MinimumAlongAxisCpu<double>(squared, axis, SquaredSteps(step2, clamped[axis]))
                      : MinimumAlongAxis(squared, axis, step2, reach[axis]);
  }
  insideBox().copy_(squared.le(threshold * threshold));
  return result;
}

} // namespace agcl
