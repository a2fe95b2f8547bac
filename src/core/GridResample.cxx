/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/GridResample.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace agcl {

namespace {
void
CheckArguments(const char *                       what,
               const at::Tensor &                 volume,
               const std::array<AxisMapping, 3> & mapping,
               const std::array<int64_t, 3> &     size)
{
  if (!volume.defined() || volume.dim() != 3)
  {
    throw std::invalid_argument(std::string(what) + ": expected a 3-D volume [D, H, W], got " +
                                (volume.defined() ? std::to_string(volume.dim()) + "-D" : std::string("none")));
  }
  for (size_t a = 0; a < 3; ++a)
  {
    if (!std::isfinite(mapping[a].scale) || !std::isfinite(mapping[a].offset))
    {
      throw std::invalid_argument(std::string(what) + ": axis " + std::to_string(a) +
                                  "'s mapping is not finite (scale " + std::to_string(mapping[a].scale) + ", offset " +
                                  std::to_string(mapping[a].offset) + ")");
    }
    if (size[a] < 0)
    {
      throw std::invalid_argument(std::string(what) + ": output size " + std::to_string(size[a]) + " on axis " +
                                  std::to_string(a) + "; expected >= 0");
    }
  }
}

// One axis of the output grid: the input's continuous index of each output voxel, and whether
// it is inside [-0.5, n - 0.5).
struct AxisSamples
{
  std::vector<double> position;
  std::vector<bool>   inside;
};

AxisSamples
Sample(const AxisMapping & mapping, int64_t count, int64_t inputLength)
{
  AxisSamples samples;
  for (int64_t j = 0; j < count; ++j)
  {
    const double x = mapping.scale * static_cast<double>(j) + mapping.offset;
    samples.position.push_back(x);
    samples.inside.push_back(inputLength > 0 && x >= -0.5 && x < static_cast<double>(inputLength) - 0.5);
  }
  return samples;
}

// The order in which to resample the axes: the one that shrinks the volume most first, so that
// the later passes run over less (a CT onto the coarse grid: x and y, 512 -> 90, before z).
std::array<int64_t, 3>
AxisOrder(const at::Tensor & volume, const std::array<int64_t, 3> & size)
{
  std::array<int64_t, 3> order{ 0, 1, 2 };
  const auto             ratio = [&](int64_t a) {
    return volume.size(a) == 0 ? 0.0 : static_cast<double>(size[a]) / static_cast<double>(volume.size(a));
  };
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return ratio(a) < ratio(b); });
  return order;
}

// Output voxels outside the input on any axis take `fill`.
torch::Tensor
FillOutside(torch::Tensor out, const std::array<AxisSamples, 3> & samples, double fill)
{
  std::array<torch::Tensor, 3> inside;
  bool                         all = true;
  for (int64_t a = 0; a < 3; ++a)
  {
    std::vector<uint8_t> flags(samples[a].inside.begin(), samples[a].inside.end());
    for (const uint8_t flag : flags)
      all = all && flag != 0;
    std::vector<int64_t> shape{ 1, 1, 1 };
    shape[a] = static_cast<int64_t>(flags.size());
    inside[a] = torch::tensor(flags, torch::kUInt8).to(torch::kBool).reshape(shape).to(out.device());
  }
  if (all)
  {
    return out;
  }
  const torch::Tensor keep = inside[0].logical_and(inside[1]).logical_and(inside[2]);
  return out.masked_fill_(keep.logical_not(), fill);
}
} // namespace

at::Tensor
ResampleLinear(const at::Tensor &                 volume,
               const std::array<AxisMapping, 3> & mapping,
               const std::array<int64_t, 3> &     size,
               double                             fill)
{
  CheckArguments("ResampleLinear", volume, mapping, size);
  if (!volume.is_floating_point())
  {
    throw std::invalid_argument("ResampleLinear: expected a floating-point volume, got " +
                                std::string(c10::toString(volume.scalar_type())));
  }
  torch::NoGradGuard         noGrad;
  std::array<AxisSamples, 3> samples;
  for (int64_t a = 0; a < 3; ++a)
  {
    samples[a] = Sample(mapping[a], size[a], volume.size(a));
  }
  if (volume.numel() == 0 || size[0] * size[1] * size[2] == 0)
  {
    return torch::full({ size[0], size[1], size[2] }, fill, volume.options());
  }
  // Per axis: v(j) = (1 - w) v(i0) + w v(i1), i0 = floor(x), i1 = i0 + 1, both clamped to the edge.
  std::array<torch::Tensor, 3> low, high, weight;
  for (int64_t a = 0; a < 3; ++a)
  {
    const int64_t        n = volume.size(a);
    std::vector<int64_t> i0, i1;
    std::vector<double>  w;
    for (const double x : samples[a].position)
    {
      const double base = std::floor(x);
      const auto   clamp = [n](double i) { return static_cast<int64_t>(std::min(std::max(i, 0.0), double(n - 1))); };
      i0.push_back(clamp(base));
      i1.push_back(clamp(base + 1.0));
      w.push_back(x - base);
    }
    std::vector<int64_t> shape{ 1, 1, 1 };
    shape[a] = size[a];
    low[a] = torch::tensor(i0, torch::kLong).reshape(shape).to(volume.device());
    high[a] = torch::tensor(i1, torch::kLong).reshape(shape).to(volume.device());
    weight[a] = torch::tensor(w, torch::kDouble).to(volume.scalar_type()).reshape(shape).to(volume.device());
  }
  torch::Tensor out;
  if (size[0] * size[1] * size[2] <= volume.numel())
  {
    // Shrinking (a CT onto the coarse grid): the 8 neighbours of each output voxel gathered
    // directly, so the work is the output's size, not the input's.
    const torch::Tensor flat = volume.contiguous().view({ -1 });
    const int64_t       rows = volume.size(1) * volume.size(2), columns = volume.size(2);
    out = torch::zeros({ size[0], size[1], size[2] }, volume.options());
    for (int corner = 0; corner < 8; ++corner)
    {
      const bool          z = (corner & 4) != 0, y = (corner & 2) != 0, x = (corner & 1) != 0;
      const torch::Tensor index =
        (z ? high[0] : low[0]) * rows + (y ? high[1] : low[1]) * columns + (x ? high[2] : low[2]);
      const torch::Tensor w =
        (z ? weight[0] : 1 - weight[0]) * (y ? weight[1] : 1 - weight[1]) * (x ? weight[2] : 1 - weight[2]);
      out.addcmul_(flat.take(index), w);
    }
  }
  else
  {
    // Growing: one axis at a time (trilinear is the product of the 1-D interpolations), the
    // axis that grows least first.
    out = volume;
    for (const int64_t a : AxisOrder(volume, size))
    {
      const torch::Tensor v0 = out.index_select(a, low[a].flatten());
      out = v0 + weight[a] * (out.index_select(a, high[a].flatten()) - v0);
    }
  }
  return FillOutside(out.contiguous(), samples, fill);
}

at::Tensor
ResampleNearest(const at::Tensor &                 labels,
                const std::array<AxisMapping, 3> & mapping,
                const std::array<int64_t, 3> &     size,
                double                             fill)
{
  CheckArguments("ResampleNearest", labels, mapping, size);
  torch::NoGradGuard         noGrad;
  std::array<AxisSamples, 3> samples;
  torch::Tensor              out = labels;
  for (const int64_t a : AxisOrder(labels, size))
  {
    const int64_t n = labels.size(a);
    samples[a] = Sample(mapping[a], size[a], n);
    if (n == 0 || size[a] == 0)
    {
      std::vector<int64_t> shape = out.sizes().vec();
      shape[a] = size[a];
      out = torch::full(shape, fill, out.options());
      continue;
    }
    std::vector<int64_t> nearest;
    for (const double x : samples[a].position)
    {
      // ITK rounds halves up (Math::RoundHalfIntegerUp); outside voxels are filled below.
      nearest.push_back(static_cast<int64_t>(std::min(std::max(std::floor(x + 0.5), 0.0), double(n - 1))));
    }
    out = out.index_select(a, torch::tensor(nearest, torch::kLong).to(labels.device()));
  }
  return FillOutside(out.contiguous(), samples, fill);
}

} // namespace agcl
