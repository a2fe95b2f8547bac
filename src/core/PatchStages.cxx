/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/PatchStages.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace agcl {

namespace {

void
Require(bool condition, const std::string & message)
{
  if (!condition)
    throw std::invalid_argument(message);
}

std::string
Shape(const at::Tensor & t)
{
  if (!t.defined())
    return "none";
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d)
    s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

// The frames as a [N, 9] double tensor (first, column, row), the organ indices [N] and the
// planar flags [N], on `device`.
struct FrameTensors
{
  torch::Tensor geometry, organ, planar;
};

FrameTensors
ToTensors(const std::vector<PatchFrame> & frames, const c10::Device & device)
{
  const auto   n = static_cast<int64_t>(frames.size());
  FrameTensors t;
  auto         geometry = torch::empty({ n, 9 }, torch::kDouble);
  auto         organ = torch::empty({ n }, torch::kLong);
  auto         planar = torch::empty({ n }, torch::kBool);
  double *     g = geometry.data_ptr<double>();
  int64_t *    o = organ.data_ptr<int64_t>();
  bool *       p = planar.data_ptr<bool>();
  for (int64_t i = 0; i < n; ++i)
  {
    for (int a = 0; a < 3; ++a)
    {
      g[9 * i + a] = frames[i].first[a];
      g[9 * i + 3 + a] = frames[i].column[a];
      g[9 * i + 6 + a] = frames[i].row[a];
    }
    o[i] = frames[i].organ;
    p[i] = frames[i].planar;
  }
  t.geometry = geometry.to(device);
  t.organ = organ.to(device);
  t.planar = planar.to(device);
  return t;
}

void
CheckOrgans(const char * what, const std::vector<PatchFrame> & frames, int64_t organs)
{
  for (size_t n = 0; n < frames.size(); ++n)
  {
    for (int a = 0; a < 3; ++a)
      Require(std::isfinite(frames[n].first[a]) && std::isfinite(frames[n].column[a]) &&
                std::isfinite(frames[n].row[a]),
              std::string(what) + ": patch " + std::to_string(n) + "'s frame is not finite");
    Require(frames[n].organ >= 0 && frames[n].organ < organs,
            std::string(what) + ": patch " + std::to_string(n) + " has organ index " + std::to_string(frames[n].organ) +
              "; expected 0.." + std::to_string(organs - 1));
  }
}

// Pixels per chunk of patches: the temporaries are a few dozen values per pixel (doubles and
// indices), ~70 MB at 2^18 pixels; a GPU gets larger chunks (fewer kernel launches).
int64_t
ChunkPixels(const c10::Device & device)
{
  return device.is_cpu() ? int64_t{ 1 } << 18 : int64_t{ 1 } << 21;
}

// floor(c + 0.5): the nearest index, halves rounded up (ITK's TransformPhysicalPointToIndex).
torch::Tensor
Nearest(const torch::Tensor & c)
{
  return torch::floor(c + 0.5);
}

} // namespace

at::Tensor
SampleQueryPatches(const at::Tensor &              volume,
                   const at::Tensor &              attention,
                   const std::vector<PatchFrame> & frames,
                   int64_t                         patchSize,
                   double                          windowLow,
                   double                          windowHigh,
                   const std::array<int64_t, 3> &  start)
{
  const char * what = "agcl::SampleQueryPatches";
  Require(volume.defined() && volume.dim() == 3 && volume.is_floating_point(),
          std::string(what) + ": expected a floating volume [Z, Y, X], got " + Shape(volume));
  Require(attention.defined() && attention.dim() == 4 && attention.size(1) == volume.size(0) &&
            attention.size(2) == volume.size(1) && attention.size(3) == volume.size(2),
          std::string(what) + ": expected attention [O, " + std::to_string(volume.size(0)) + ", " +
            std::to_string(volume.size(1)) + ", " + std::to_string(volume.size(2)) + "], got " + Shape(attention));
  Require(attention.scalar_type() == torch::kBool || attention.scalar_type() == torch::kByte,
          std::string(what) + ": expected a bool or uint8 attention mask");
  Require(attention.device() == volume.device(),
          std::string(what) + ": the attention is on " + attention.device().str() + ", the volume on " +
            volume.device().str());
  Require(patchSize >= 1, std::string(what) + ": patch size " + std::to_string(patchSize) + "; expected >= 1");
  Require(std::isfinite(windowLow) && std::isfinite(windowHigh) && windowLow < windowHigh,
          std::string(what) + ": window " + std::to_string(windowLow) + ".." + std::to_string(windowHigh) +
            "; expected low < high");
  CheckOrgans(what, frames, attention.size(0));

  const auto    device = volume.device();
  const int64_t N = static_cast<int64_t>(frames.size()), P = patchSize;
  auto          out = torch::empty({ N, 2, P, P }, torch::TensorOptions().dtype(torch::kFloat).device(device));
  if (N == 0)
    return out;
  const std::array<int64_t, 3> n{ volume.size(2), volume.size(1), volume.size(0) }; // x, y, z
  const int64_t                voxels = n[0] * n[1] * n[2];
  const torch::Tensor          values = volume.contiguous().reshape({ -1 });
  const torch::Tensor          masks = attention.contiguous().reshape({ -1 });
  const FrameTensors           t = ToTensors(frames, device);
  const auto                   doubles = torch::TensorOptions().dtype(torch::kDouble).device(device);
  const torch::Tensor          q = torch::arange(P, doubles);
  const torch::Tensor          columns = q.view({ 1, 1, P }), rows = q.view({ 1, P, 1 });
  const double                 width = windowHigh - windowLow;
  const int64_t                chunk = std::max<int64_t>(1, ChunkPixels(device) / (P * P));
  for (int64_t a = 0; a < N; a += chunk)
  {
    const int64_t       b = std::min(N, a + chunk);
    const torch::Tensor g = t.geometry.slice(0, a, b);
    const torch::Tensor planar = t.planar.slice(0, a, b).view({ -1, 1, 1 });
    const bool          allPlanar = planar.all().item<bool>();
    torch::Tensor       inside, b0[3], b1[3], f[3], nearest[3];
    for (int i = 0; i < 3; ++i)
    {
      // (first + q column) + r row: the order of the ITK loops' arithmetic. A term that is zero
      // for every patch of the chunk adds nothing (x + 0 = x) and is left out, so that an axis
      // along the patches' columns is [n, 1, P], along their rows [n, P, 1], across [n, 1, 1].
      torch::Tensor c = g.select(1, i).view({ -1, 1, 1 });
      if (g.select(1, 3 + i).ne(0.0).any().item<bool>())
        c = c + columns * g.select(1, 3 + i).view({ -1, 1, 1 });
      if (g.select(1, 6 + i).ne(0.0).any().item<bool>())
        c = c + rows * g.select(1, 6 + i).view({ -1, 1, 1 });
      nearest[i] = Nearest(c);
      if (i == 2) // a planar patch: on the nearest slice, weight 0
        c = torch::where(planar, nearest[i], c);
      // Relative to the volume's first voxel after rounding (as the ITK loops subtract the
      // buffer's start index from floor(c)): exact integers in double.
      const double        s = static_cast<double>(start[i]);
      const torch::Tensor floor = torch::floor(c);
      const torch::Tensor base = floor - s;
      nearest[i] = nearest[i] - s;
      const torch::Tensor in = (nearest[i] >= 0) & (nearest[i] < static_cast<double>(n[i]));
      inside = i == 0 ? in : inside & in;
      // ITK's rule at the edges: the base index clamped to the buffer, no weight below it, the
      // edge voxel as its own neighbour above it.
      f[i] = torch::where(base < 0.0, torch::zeros({}, doubles), c - floor);
      b0[i] = torch::clamp(base, 0.0, static_cast<double>(n[i] - 1));
      b1[i] = torch::clamp_max(b0[i] + 1.0, static_cast<double>(n[i] - 1));
      b0[i] = b0[i].to(torch::kLong);
      b1[i] = b1[i].to(torch::kLong);
      nearest[i] = nearest[i].clamp(0.0, static_cast<double>(n[i] - 1)).to(torch::kLong);
    }
    const int64_t sy = n[0], sz = n[0] * n[1];
    auto          v = [&](const torch::Tensor & z, const torch::Tensor & y, const torch::Tensor & x) {
      const torch::Tensor at = z * sz + y * sy + x; // broadcast to [n, P, P]
      return values.index_select(0, at.reshape({ -1 })).to(torch::kDouble).view(at.sizes());
    };
    auto lerp = [](const torch::Tensor & lo, const torch::Tensor & hi, const torch::Tensor & w) {
      return lo + w * (hi - lo);
    };
    const torch::Tensor x00 = lerp(v(b0[2], b0[1], b0[0]), v(b0[2], b0[1], b1[0]), f[0]);
    const torch::Tensor x10 = lerp(v(b0[2], b1[1], b0[0]), v(b0[2], b1[1], b1[0]), f[0]);
    const torch::Tensor y0 = lerp(x00, x10, f[1]);
    // A planar patch (weight 0 in z) is the bilinear value on its slice, without the z term:
    // y0 + 0 (y1 - y0) would be y0 too, except where y1 is not finite.
    torch::Tensor value = y0;
    if (!allPlanar)
    {
      const torch::Tensor x01 = lerp(v(b1[2], b0[1], b0[0]), v(b1[2], b0[1], b1[0]), f[0]);
      const torch::Tensor x11 = lerp(v(b1[2], b1[1], b0[0]), v(b1[2], b1[1], b1[0]), f[0]);
      value = torch::where(planar, y0, lerp(y0, lerp(x01, x11, f[1]), f[2]));
    }
    const torch::Tensor windowed =
      torch::where(inside, torch::clamp((value - windowLow) / width, 0.0, 1.0), torch::zeros({}, doubles));
    out.select(1, 0).slice(0, a, b).copy_(windowed);
    const torch::Tensor organ = t.organ.slice(0, a, b).view({ -1, 1, 1 });
    const torch::Tensor at = (organ * voxels + nearest[2] * sz + nearest[1] * sy + nearest[0]).expand({ b - a, P, P });
    const torch::Tensor set = masks.index_select(0, at.reshape({ -1 })).view(at.sizes()) != 0;
    out.select(1, 1).slice(0, a, b).copy_(set & inside.expand({ b - a, P, P }));
  }
  return out;
}

namespace {

// Trilinear interpolation of `coarse` [Z, Y, X] at continuous indices (x, y, z) clamped to the
// grid, neighbours beyond the last voxel the last voxel; the corners summed in the order of
// LabelFusionFilter::BlendCoarseProbability (corner bits x, y, z), in double.
torch::Tensor
InterpolateClamped(const torch::Tensor & coarse, const torch::Tensor c[3])
{
  const std::array<int64_t, 3> n{ coarse.size(2), coarse.size(1), coarse.size(0) };
  const torch::Tensor          flat = coarse.contiguous().reshape({ -1 });
  torch::Tensor                low[3], high[3], fraction[3];
  for (int i = 0; i < 3; ++i)
  {
    const torch::Tensor clamped = torch::clamp(c[i], 0.0, static_cast<double>(n[i] - 1));
    const torch::Tensor floor = torch::floor(clamped);
    fraction[i] = clamped - floor;
    low[i] = floor.to(torch::kLong);
    high[i] = torch::clamp_max(low[i] + 1, n[i] - 1);
  }
  torch::Tensor value;
  for (unsigned corner = 0; corner < 8; ++corner)
  {
    torch::Tensor factor, offset;
    int64_t       stride = 1;
    for (int i = 0; i < 3; ++i)
    {
      const bool          up = (corner >> i) & 1u;
      const torch::Tensor w = up ? fraction[i] : 1.0 - fraction[i];
      factor = i == 0 ? w : factor * w;
      const torch::Tensor at = (up ? high[i] : low[i]) * stride;
      offset = i == 0 ? at : offset + at;
      stride *= n[i];
    }
    const torch::Tensor term =
      factor * flat.index_select(0, offset.reshape({ -1 })).to(torch::kDouble).view(offset.sizes());
    value = corner == 0 ? term : value + term;
  }
  return value;
}

} // namespace

std::vector<at::Tensor>
FusePatchScores(const at::Tensor &              probabilities,
                const std::vector<PatchFrame> & frames,
                const std::vector<VoxelBox> &   boxes,
                const FusionOptions &           options,
                const std::vector<CoarseVote> & votes)
{
  const char * what = "agcl::FusePatchScores";
  Require(probabilities.defined() && probabilities.dim() == 4 && probabilities.size(1) == 1 &&
            probabilities.size(2) == probabilities.size(3) &&
            probabilities.size(0) == static_cast<int64_t>(frames.size()),
          std::string(what) + ": expected probabilities [" + std::to_string(frames.size()) + ", 1, P, P], got " +
            Shape(probabilities));
  Require(options.subdivisions[0] >= 1 && options.subdivisions[1] >= 1 && options.subdivisions[0] <= 64 &&
            options.subdivisions[1] <= 64,
          std::string(what) + ": subdivisions " + std::to_string(options.subdivisions[0]) + " x " +
            std::to_string(options.subdivisions[1]) + "; expected 1..64 each");
  Require(options.coarseWeight >= 0.0 && options.coarseWeight <= 1.0,
          std::string(what) + ": coarse weight " + std::to_string(options.coarseWeight) + "; expected 0..1");
  Require(votes.empty() || votes.size() == boxes.size(),
          std::string(what) + ": " + std::to_string(votes.size()) + " coarse votes for " +
            std::to_string(boxes.size()) + " organs");
  CheckOrgans(what, frames, static_cast<int64_t>(boxes.size()));
  for (const VoxelBox & box : boxes)
    for (int i = 0; i < 3; ++i)
      Require(box.size[i] >= 0, std::string(what) + ": a box with a negative size");

  const auto    device = probabilities.device();
  const auto    floats = torch::TensorOptions().dtype(torch::kFloat).device(device);
  const auto    doubles = torch::TensorOptions().dtype(torch::kDouble).device(device);
  const int64_t P = probabilities.size(2), kq = options.subdivisions[0], kr = options.subdivisions[1];
  // Pixel weights as LabelFusionFilter computes them (double, then float), times the share.
  auto pixelWeight = torch::ones({ P, P }, torch::kFloat);
  if (options.gaussianWeighting)
  {
    const double sigma = P / 4.0;
    auto         w = pixelWeight.accessor<float, 2>();
    for (int64_t r = 0; r < P; ++r)
      for (int64_t q = 0; q < P; ++q)
        w[r][q] = static_cast<float>(
          std::exp(-((q - P / 2.0) * (q - P / 2.0) + (r - P / 2.0) * (r - P / 2.0)) / (2 * sigma * sigma)));
  }
  const float share = 1.0f / static_cast<float>(kq * kr);
  pixelWeight = (pixelWeight * share).to(device);
  // Sub-pixel centres in patch pixel units: u for the columns, v for the rows.
  auto subpixels = [&](int64_t k) {
    auto centre = torch::empty({ P * k }, torch::kDouble);
    auto c = centre.accessor<double, 1>();
    for (int64_t q = 0; q < P; ++q)
      for (int64_t s = 0; s < k; ++s)
        c[q * k + s] = q - 0.5 + (s + 0.5) / static_cast<double>(k);
    return centre.to(device);
  };
  const torch::Tensor u = subpixels(kq).view({ 1, 1, -1 }), v = subpixels(kr).view({ 1, -1, 1 });
  const FrameTensors  t = ToTensors(frames, device);
  const torch::Tensor organOf = t.organ.cpu();

  std::vector<at::Tensor> scores(boxes.size());
  for (size_t o = 0; o < boxes.size(); ++o)
  {
    const VoxelBox & box = boxes[o];
    if (box.Count() == 0)
      continue;
    auto                sum = torch::zeros({ box.Count() }, floats);
    auto                weight = torch::zeros({ box.Count() }, floats);
    const torch::Tensor mine = torch::nonzero(organOf == static_cast<int64_t>(o)).view({ -1 }).to(device);
    const int64_t       count = mine.size(0);
    const int64_t       chunk = std::max<int64_t>(1, ChunkPixels(device) / (P * P * kq * kr));
    for (int64_t a = 0; a < count; a += chunk)
    {
      const torch::Tensor which = mine.slice(0, a, std::min(count, a + chunk));
      const int64_t       m = which.size(0);
      const torch::Tensor g = t.geometry.index_select(0, which);
      torch::Tensor       inside, offset;
      for (int i = 2; i >= 0; --i)
      {
        // As in the sampling: terms that are zero for the whole chunk are left out (x + 0 = x).
        torch::Tensor c = g.select(1, i).view({ -1, 1, 1 });
        if (g.select(1, 3 + i).ne(0.0).any().item<bool>())
          c = c + u * g.select(1, 3 + i).view({ -1, 1, 1 });
        if (g.select(1, 6 + i).ne(0.0).any().item<bool>())
          c = c + v * g.select(1, 6 + i).view({ -1, 1, 1 });
        const torch::Tensor index = Nearest(c) - static_cast<double>(box.start[i]);
        const torch::Tensor in = (index >= 0) & (index < static_cast<double>(box.size[i]));
        inside = i == 2 ? in : inside & in;
        const torch::Tensor at = index.clamp(0.0, static_cast<double>(box.size[i] - 1)).to(torch::kLong);
        offset = i == 2 ? at : offset * box.size[i] + at;
      }
      const std::vector<int64_t> full{ m, P * kr, P * kq };
      inside = inside.expand(full);
      if (!inside.any().item<bool>())
        continue;
      // Each sub-pixel carries its pixel's probability and weight.
      torch::Tensor p = probabilities.index_select(0, which).select(1, 0).to(torch::kFloat);
      torch::Tensor w = pixelWeight.expand_as(p);
      if (kq > 1 || kr > 1)
      {
        p = p.repeat_interleave(kr, 1).repeat_interleave(kq, 2);
        w = w.repeat_interleave(kr, 1).repeat_interleave(kq, 2);
      }
      const torch::Tensor at = offset.expand(full).masked_select(inside);
      const torch::Tensor pw = w.masked_select(inside);
      sum.index_add_(0, at, pw * p.masked_select(inside));
      weight.index_add_(0, at, pw);
    }
    torch::Tensor score = torch::where(weight > 0, sum / weight, torch::zeros({}, floats));
    if (options.coarseWeight > 0.0 && !votes.empty() && votes[o].probability.defined())
    {
      const CoarseVote & vote = votes[o];
      Require(vote.probability.dim() == 3,
              std::string(what) + ": organ " + std::to_string(o) + "'s coarse probability is " +
                Shape(vote.probability) + "; expected [Z, Y, X]");
      // Voxel indices of the box (x fastest), then the coarse grid's continuous index, with
      // the affine map's terms summed in BlendCoarseProbability's order (t, then M x, M y, M z).
      torch::Tensor index[3];
      for (int i = 0; i < 3; ++i)
      {
        std::vector<int64_t> shape{ 1, 1, 1 };
        shape[2 - i] = box.size[i];
        index[i] = (torch::arange(box.size[i], doubles) + static_cast<double>(box.start[i])).view(shape);
      }
      torch::Tensor c[3];
      for (int i = 0; i < 3; ++i)
      {
        const auto & m = vote.toCoarse[i];
        c[i] = ((m[3] + m[0] * index[0]) + m[1] * index[1]) + m[2] * index[2];
        c[i] = c[i].expand({ box.size[2], box.size[1], box.size[0] });
      }
      const torch::Tensor coarse = InterpolateClamped(vote.probability.to(device), c).reshape({ -1 });
      const float         w = static_cast<float>(options.coarseWeight);
      score = (1.0f - w) * score + w * (vote.scale * coarse).to(torch::kFloat);
    }
    scores[o] = score.view({ box.size[2], box.size[1], box.size[0] });
  }
  return scores;
}

SlabDecision
DecideLabels(const std::vector<at::Tensor> & scores,
             const std::vector<VoxelBox> &   boxes,
             const at::Tensor &              attention,
             const std::vector<double> &     thresholds,
             const std::array<int64_t, 3> &  start)
{
  const char * what = "agcl::DecideLabels";
  Require(attention.defined() && attention.dim() == 4 && attention.size(0) == static_cast<int64_t>(boxes.size()),
          std::string(what) + ": expected attention [" + std::to_string(boxes.size()) + ", Z, Y, X], got " +
            Shape(attention));
  Require(scores.size() == boxes.size() && thresholds.size() == boxes.size(),
          std::string(what) + ": " + std::to_string(scores.size()) + " scores and " +
            std::to_string(thresholds.size()) + " thresholds for " + std::to_string(boxes.size()) + " organs");
  const auto   device = attention.device();
  const auto   Z = attention.size(1), Y = attention.size(2), X = attention.size(3);
  SlabDecision decision;
  decision.labels = torch::zeros({ Z, Y, X }, torch::TensorOptions().dtype(torch::kInt).device(device));
  // The winning margin so far (double, as the ITK loop); -inf where no organ took the voxel.
  // In-place work on the boxes: on the CPU fresh slab-sized temporaries cost more in page
  // faults than the arithmetic.
  const double infinity = std::numeric_limits<double>::infinity();
  auto         best = torch::full({ Z, Y, X }, -infinity, torch::TensorOptions().dtype(torch::kDouble).device(device));
  decision.score = torch::zeros({ Z, Y, X }, torch::TensorOptions().dtype(torch::kByte).device(device));
  std::vector<VoxelBox> inSlab(boxes.size());
  auto                  view = [](const torch::Tensor & t, const VoxelBox & b) {
    return t.slice(-3, b.start[2], b.start[2] + b.size[2])
      .slice(-2, b.start[1], b.start[1] + b.size[1])
      .slice(-1, b.start[0], b.start[0] + b.size[0]);
  };
  for (size_t o = 0; o < boxes.size(); ++o)
  {
    if (boxes[o].Count() == 0 || !scores[o].defined())
      continue;
    VoxelBox & b = inSlab[o] = boxes[o]; // in the slab's indices
    for (int i = 0; i < 3; ++i)
      b.start[i] -= start[i];
    Require(b.start[0] >= 0 && b.start[1] >= 0 && b.start[2] >= 0 && b.start[0] + b.size[0] <= X &&
              b.start[1] + b.size[1] <= Y && b.start[2] + b.size[2] <= Z,
            std::string(what) + ": organ " + std::to_string(o) + "'s box lies outside the slab");
    Require(scores[o].numel() == b.Count(),
            std::string(what) + ": organ " + std::to_string(o) + "'s score has " + std::to_string(scores[o].numel()) +
              " values for a box of " + std::to_string(b.Count()));
    torch::Tensor bestBox = view(best, b), labelBox = view(decision.labels, b);
    torch::Tensor margin = scores[o].view({ b.size[2], b.size[1], b.size[0] }).to(torch::kDouble, false, true);
    margin.sub_(thresholds[o]);
    // At or above the threshold, inside the attention, and strictly above the organs before.
    torch::Tensor take = margin.ge(0.0);
    take.logical_and_(view(attention[o], b).ne(0));
    take.logical_and_(margin.gt(bestBox));
    margin.masked_fill_(take.logical_not(), -infinity);
    at::maximum_out(bestBox, bestBox, margin); // the margin where taken (it is larger there)
    labelBox.masked_fill_(take, static_cast<int>(o + 1));
  }
  // 255 x the winning organ's score rounded half away from zero (std::lround), clamped to 1..255.
  for (size_t o = 0; o < boxes.size(); ++o)
  {
    if (inSlab[o].Count() == 0)
      continue;
    const VoxelBox &    b = inSlab[o];
    const torch::Tensor mine = view(decision.labels, b).eq(static_cast<int>(o + 1));
    torch::Tensor       scoreBox = view(decision.score, b);
    const torch::Tensor scaled =
      scores[o].view({ b.size[2], b.size[1], b.size[0] }).to(torch::kDouble, false, true).mul_(255.0);
    const torch::Tensor quantised = scaled.add_(0.5).floor_().clamp_(1.0, 255.0).to(torch::kByte);
    scoreBox.copy_(torch::where(mine, quantised, scoreBox));
  }
  return decision;
}

at::Tensor
QuantisedProbability(const at::Tensor &             score,
                     const VoxelBox &               absoluteBox,
                     const at::Tensor &             mask,
                     const std::array<int64_t, 3> & start)
{
  VoxelBox box = absoluteBox;
  for (int i = 0; i < 3; ++i)
    box.start[i] -= start[i];
  Require(mask.defined() && mask.dim() == 3,
          "agcl::QuantisedProbability: expected a mask [Z, Y, X], got " + Shape(mask));
  auto out = torch::zeros(mask.sizes(), torch::TensorOptions().dtype(torch::kByte).device(mask.device()));
  if (box.Count() == 0 || !score.defined())
    return out;
  Require(box.start[0] >= 0 && box.start[1] >= 0 && box.start[2] >= 0 && box.start[0] + box.size[0] <= mask.size(2) &&
            box.start[1] + box.size[1] <= mask.size(1) && box.start[2] + box.size[2] <= mask.size(0),
          "agcl::QuantisedProbability: the box lies outside the slab");
  Require(score.numel() == box.Count(),
          "agcl::QuantisedProbability: the score has " + std::to_string(score.numel()) + " values for a box of " +
            std::to_string(box.Count()));
  const torch::Tensor m = mask.slice(0, box.start[2], box.start[2] + box.size[2])
                            .slice(1, box.start[1], box.start[1] + box.size[1])
                            .slice(2, box.start[0], box.start[0] + box.size[0]);
  // clamp(score, 0, 1) x 255 in float, then rounded half away from zero (non-negative: floor(x + 0.5)).
  const torch::Tensor scaled = score.view(m.sizes()).clamp(0.0, 1.0) * 255.0f;
  const torch::Tensor rounded = torch::floor(scaled.to(torch::kDouble) + 0.5).to(torch::kByte);
  out.slice(0, box.start[2], box.start[2] + box.size[2])
    .slice(1, box.start[1], box.start[1] + box.size[1])
    .slice(2, box.start[0], box.start[0] + box.size[0])
    .copy_(torch::where(m != 0, rounded, torch::zeros({}, rounded.options())));
  return out;
}

} // namespace agcl
