/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "agcl/PictureStages.h"

#include "Checks.h"
#include "agcl/AGCLModel.h"
#include "agcl/ASPPDecoder.h"
#include "agcl/AttentionMap.h"
#include "agcl/ChannelNormalization.h"
#include "agcl/ModuleOnDevice.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

namespace agcl {
namespace {

using detail::Require;
using detail::ShapeText;

void
RequirePicture(const Picture & picture, const ModelConfig & config, const std::string & where)
{
  Require(config.image_dimensions == 2,
          where,
          "the model is for " + std::to_string(config.image_dimensions) + "D images, not 2D pictures");
  Require(picture.pixels.defined() && picture.pixels.dim() == 3 && picture.pixels.size(0) == config.image_channels &&
            picture.pixels.size(1) > 0 && picture.pixels.size(2) > 0,
          where,
          "picture of shape " + ShapeText(picture.pixels) + "; expected [" + std::to_string(config.image_channels) +
            ", H, W] (the model's channels)");
  for (double s : picture.spacing)
    Require(std::isfinite(s) && s > 0, where, "pixel spacing " + std::to_string(s) + "; expected finite and > 0");
}

// One axis of the coarse grid (the 3D rule of CoarseAttentionFilter::ResampleToCoarseGrid): the
// coarse spacing over the extent, lower edges coinciding.
void
CoarseAxis(int64_t n, double spacing, double coarse, int64_t & size, AxisMapping & from, AxisMapping & to)
{
  size = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(n * spacing / coarse - 1e-6)));
  const double shift = (coarse - spacing) / 2.0;
  from = { coarse / spacing, shift / spacing };
  to = { spacing / coarse, -shift / coarse };
}

// The patch pixel spacing in mm and its step along x and y in picture pixels.
struct PatchStep
{
  double mm, x, y;
};
PatchStep
StepOf(const std::array<double, 2> & spacing, const ModelConfig & config)
{
  const double s = config.patch_spacing_mm > 0 ? config.patch_spacing_mm : std::min(spacing[0], spacing[1]);
  return { s, s / spacing[0], s / spacing[1] };
}

// The frame of the patch whose centre pixel is at continuous index (x, y).
PatchFrame
FrameAt(double x, double y, const PatchStep & step, int64_t P, int64_t organ)
{
  PatchFrame f;
  f.first = { x - (P / 2) * step.x, y - (P / 2) * step.y, 0.0 };
  f.column = { step.x, 0.0, 0.0 };
  f.row = { 0.0, step.y, 0.0 };
  f.organ = organ;
  f.planar = true;
  return f;
}

// Per patch pixel: the continuous index (x, y) of frames [N] at pixel (q, r), [N, P, P] double.
std::array<at::Tensor, 2>
Coordinates(const std::vector<PatchFrame> & frames, int64_t P, const c10::Device & device)
{
  const auto          doubles = torch::TensorOptions().dtype(torch::kDouble);
  std::vector<double> g;
  for (const PatchFrame & f : frames)
    for (int i = 0; i < 2; ++i)
      g.insert(g.end(), { f.first[i], f.column[i], f.row[i] });
  const at::Tensor          geometry = torch::tensor(g, doubles).view({ -1, 2, 3 }).to(device);
  const at::Tensor          q = torch::arange(P, doubles.device(device));
  std::array<at::Tensor, 2> c;
  for (int i = 0; i < 2; ++i)
  {
    const at::Tensor t = geometry.select(1, i);
    c[i] = t.select(1, 0).view({ -1, 1, 1 }) + q.view({ 1, 1, P }) * t.select(1, 1).view({ -1, 1, 1 }) +
           q.view({ 1, P, 1 }) * t.select(1, 2).view({ -1, 1, 1 });
  }
  return c;
}

// The nearest pixel (halves rounded up) of continuous indices c along an axis of n pixels, and
// whether it is inside.
std::pair<at::Tensor, at::Tensor>
NearestIndex(const at::Tensor & c, int64_t n)
{
  const at::Tensor nearest = torch::floor(c + 0.5);
  const at::Tensor inside = (nearest >= 0) & (nearest < static_cast<double>(n));
  return { nearest.clamp(0.0, static_cast<double>(n - 1)).to(torch::kLong), inside };
}

void
CheckFrames(const std::vector<PatchFrame> & frames, int64_t organs, const std::string & where)
{
  for (const PatchFrame & f : frames)
    Require(f.organ >= 0 && f.organ < organs,
            where,
            "a frame's organ " + std::to_string(f.organ) + "; expected 0.." + std::to_string(organs - 1));
}

// Restores a module's training flag when it goes.
class EvalMode
{
public:
  explicit EvalMode(torch::nn::Module & module)
    : m_Module(module)
    , m_Training(module.is_training())
  {
    module.eval();
  }
  ~EvalMode() { m_Module.train(m_Training); }
  EvalMode(const EvalMode &) = delete;
  EvalMode &
  operator=(const EvalMode &) = delete;

private:
  torch::nn::Module & m_Module;
  bool                m_Training;
};

} // namespace

PictureCoarseGrid
CoarseGridOfPicture(int64_t height, int64_t width, const std::array<double, 2> & spacing, const ModelConfig & config)
{
  PictureCoarseGrid grid;
  CoarseAxis(height, spacing[1], config.coarse_spacing_mm[1], grid.size[1], grid.fromPicture[1], grid.toPicture[1]);
  CoarseAxis(width, spacing[0], config.coarse_spacing_mm[0], grid.size[2], grid.fromPicture[2], grid.toPicture[2]);
  return grid;
}

at::Tensor
PictureOnCoarseGrid(const Picture & picture, const ModelConfig & config)
{
  RequirePicture(picture, config, "agcl::PictureOnCoarseGrid");
  const at::Tensor        normalised = NormalizeChannels(picture.pixels, config, NormalizationWindow::Coarse);
  const PictureCoarseGrid grid =
    CoarseGridOfPicture(picture.pixels.size(1), picture.pixels.size(2), picture.spacing, config);
  std::vector<at::Tensor> channels;
  for (int64_t c = 0; c < normalised.size(0); ++c)
    channels.push_back(ResampleLinear(normalised[c].unsqueeze(0), grid.fromPicture, grid.size, 0.0));
  return torch::stack(channels);
}

at::Tensor
LabelsOnCoarseGrid(const at::Tensor & labels, const std::array<double, 2> & spacing, const ModelConfig & config)
{
  Require(labels.defined() && labels.dim() == 2,
          "agcl::LabelsOnCoarseGrid",
          "label map of shape " + ShapeText(labels) + "; expected [H, W]");
  const PictureCoarseGrid grid = CoarseGridOfPicture(labels.size(0), labels.size(1), spacing, config);
  return ResampleNearest(labels.unsqueeze(0), grid.fromPicture, grid.size, 0.0);
}

at::Tensor
AttentionOfClasses(const at::Tensor & classes, int64_t organs, const std::array<double, 2> & spacing, double marginMM)
{
  Require(classes.defined() && classes.dim() == 2,
          "agcl::AttentionOfClasses",
          "class map of shape " + ShapeText(classes) + "; expected [H, W]");
  std::vector<at::Tensor> attention;
  for (int64_t o = 0; o < organs; ++o)
    attention.push_back(GrowByMargin(classes.eq(o + 1).unsqueeze(0), { 1.0, spacing[1], spacing[0] }, marginMM)[0]);
  return organs > 0 ? torch::stack(attention)
                    : torch::zeros({ 0, classes.size(0), classes.size(1) },
                                   torch::TensorOptions().dtype(torch::kBool).device(classes.device()));
}

PictureCoarse
CoarsePicture(AGCLModel & model, const Picture & picture, const c10::Device & device)
{
  const ModelConfig & config = model.Config();
  const at::Tensor    coarse = PictureOnCoarseGrid(picture, config);
  const auto          prediction = model.PredictCoarse(coarse, device);
  const int64_t       H = picture.pixels.size(1), W = picture.pixels.size(2);
  const auto          grid = CoarseGridOfPicture(H, W, picture.spacing, config);
  const auto          target = picture.pixels.device();
  PictureCoarse       result;
  result.classes = ResampleNearest(prediction.classes.to(target), grid.toPicture, { 1, H, W }, 0.0)[0];
  const int64_t           O = static_cast<int64_t>(config.organs.size());
  std::vector<at::Tensor> attention;
  for (int64_t o = 0; o < O; ++o)
  {
    const at::Tensor seed = ResampleNearest(prediction.seeds[o].to(target), grid.toPicture, { 1, H, W }, 0.0);
    attention.push_back(GrowByMargin(seed, { 1.0, picture.spacing[1], picture.spacing[0] }, config.margin_mm)[0]);
  }
  result.attention = O > 0 ? torch::stack(attention)
                           : torch::zeros({ 0, H, W }, torch::TensorOptions().dtype(torch::kBool).device(target));
  result.probabilities = prediction.probabilities.to(target, torch::kFloat) / 255.0;
  return result;
}

std::vector<PatchFrame>
PicturePatchFrames(const at::Tensor &            attention,
                   const std::array<double, 2> & spacing,
                   const ModelConfig &           config,
                   int64_t                       patchesPerOrgan,
                   uint64_t                      seed,
                   double                        overlap)
{
  const std::string where = "agcl::PicturePatchFrames";
  Require(attention.defined() && attention.dim() == 3 &&
            attention.size(0) == static_cast<int64_t>(config.organs.size()),
          where,
          "attention of shape " + ShapeText(attention) + "; expected [" + std::to_string(config.organs.size()) +
            ", H, W] (one map per organ of the model)");
  Require(patchesPerOrgan >= 0, where, "patches per organ " + std::to_string(patchesPerOrgan) + "; expected >= 0");
  Require(overlap >= 0 && overlap < 1, where, "overlap " + std::to_string(overlap) + "; expected 0 <= overlap < 1");
  const int64_t           P = config.patch_size;
  const PatchStep         step = StepOf(spacing, config);
  std::vector<PatchFrame> frames;
  for (int64_t o = 0; o < attention.size(0); ++o)
  {
    const at::Tensor pixels = torch::nonzero(attention[o].to(torch::kCPU)); // [K, 2] (y, x), row-major order
    const int64_t    K = pixels.size(0);
    if (K == 0)
      continue; // organ absent: no patches
    const auto yx = pixels.accessor<int64_t, 2>();
    if (patchesPerOrgan > 0)
    {
      std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(config.organs[o].label));
      for (int64_t n = 0; n < patchesPerOrgan; ++n)
      {
        const int64_t k = static_cast<int64_t>(rng() % static_cast<uint64_t>(K));
        frames.push_back(FrameAt(static_cast<double>(yx[k][1]), static_cast<double>(yx[k][0]), step, P, o));
      }
      continue;
    }
    // Inference: the attention box's physical extent covered by tiles (QueryPatchSamplerFilter's rule).
    const at::Tensor lo = std::get<0>(pixels.min(0)), hi = std::get<0>(pixels.max(0));
    const double     ymin = lo[0].item<int64_t>() * spacing[1], ymax = hi[0].item<int64_t>() * spacing[1];
    const double     xmin = lo[1].item<int64_t>() * spacing[0], xmax = hi[1].item<int64_t>() * spacing[0];
    const double     s = step.mm;
    const double     stride = std::max(1.0, std::floor(P * (1.0 - overlap))) * s;
    auto             starts = [&](double a, double b) {
      if ((b - a) / stride > 1e4)
        throw std::invalid_argument(where + ": tiles of " + std::to_string(P) + " pixels at " + std::to_string(s) +
                                    " mm would need more than 10000 tiles across the attention box");
      std::vector<double> c;
      for (double first = a + (P / 2) * s;; first += stride)
      {
        c.push_back(first);
        if (first + (P / 2 - 1) * s >= b - 1e-9)
          break;
      }
      return c;
    };
    for (double cy : starts(ymin, ymax))
      for (double cx : starts(xmin, xmax))
        frames.push_back(FrameAt(cx / spacing[0], cy / spacing[1], step, P, o));
  }
  return frames;
}

at::Tensor
SamplePicturePatches(const Picture &                 picture,
                     const at::Tensor &              attention,
                     const std::vector<PatchFrame> & frames,
                     const ModelConfig &             config)
{
  const std::string where = "agcl::SamplePicturePatches";
  RequirePicture(picture, config, where);
  const int64_t C = picture.pixels.size(0), H = picture.pixels.size(1), W = picture.pixels.size(2);
  Require(attention.defined() && attention.dim() == 3 && attention.size(1) == H && attention.size(2) == W,
          where,
          "attention of shape " + ShapeText(attention) + "; expected [O, " + std::to_string(H) + ", " +
            std::to_string(W) + "]");
  CheckFrames(frames, attention.size(0), where);
  const auto    device = picture.pixels.device();
  const int64_t N = static_cast<int64_t>(frames.size()), P = config.patch_size;
  if (N == 0)
    return torch::zeros({ 0, C + 1, P, P }, torch::TensorOptions().dtype(torch::kFloat).device(device));
  const at::Tensor values = NormalizeChannels(picture.pixels, config, NormalizationWindow::Patches).reshape({ C, -1 });
  const auto       c = Coordinates(frames, P, device);
  const int64_t    n[2] = { W, H };
  at::Tensor       b0[2], b1[2], f[2], nearest[2], inside;
  for (int i = 0; i < 2; ++i)
  {
    // ITK's linear rule: the base index clamped to the picture, no weight below it, the edge
    // pixel as its own neighbour above it.
    const at::Tensor floor = torch::floor(c[i]);
    f[i] = torch::where(floor < 0.0, torch::zeros({}, floor.options()), c[i] - floor);
    b0[i] = floor.clamp(0.0, static_cast<double>(n[i] - 1));
    b1[i] = (b0[i] + 1.0).clamp_max(static_cast<double>(n[i] - 1)).to(torch::kLong);
    b0[i] = b0[i].to(torch::kLong);
    auto [index, in] = NearestIndex(c[i], n[i]);
    nearest[i] = index;
    inside = i == 0 ? in : inside & in;
  }
  auto v = [&](const at::Tensor & y, const at::Tensor & x) { // [C, N, P, P] double
    return values.index_select(1, (y * W + x).reshape({ -1 })).to(torch::kDouble).view({ C, N, P, P });
  };
  const at::Tensor     top = v(b0[1], b0[0]) + f[0] * (v(b0[1], b1[0]) - v(b0[1], b0[0]));
  const at::Tensor     bottom = v(b1[1], b0[0]) + f[0] * (v(b1[1], b1[0]) - v(b1[1], b0[0]));
  const at::Tensor     image = torch::where(inside, top + f[1] * (bottom - top), torch::zeros({}, top.options()));
  std::vector<int64_t> organ;
  for (const PatchFrame & frame : frames)
    organ.push_back(frame.organ);
  const at::Tensor organs = torch::tensor(organ, torch::kLong).to(device).view({ -1, 1, 1 });
  const at::Tensor flat = (organs * H + nearest[1]) * W + nearest[0];
  const at::Tensor attended =
    attention.reshape({ -1 }).ne(0).index_select(0, flat.reshape({ -1 })).view({ N, P, P }) & inside;
  return torch::cat({ image.permute({ 1, 0, 2, 3 }).to(torch::kFloat), attended.unsqueeze(1).to(torch::kFloat) }, 1)
    .contiguous();
}

at::Tensor
SamplePictureMasks(const at::Tensor &              labels,
                   const std::vector<PatchFrame> & frames,
                   int64_t                         patchSize,
                   const std::vector<int64_t> &    organLabels,
                   int64_t                         ignoreLabel)
{
  const std::string where = "agcl::SamplePictureMasks";
  Require(
    labels.defined() && labels.dim() == 2, where, "label map of shape " + ShapeText(labels) + "; expected [H, W]");
  Require(patchSize >= 1, where, "patch size " + std::to_string(patchSize) + "; expected >= 1");
  CheckFrames(frames, static_cast<int64_t>(organLabels.size()), where);
  const int64_t N = static_cast<int64_t>(frames.size()), P = patchSize, H = labels.size(0), W = labels.size(1);
  const auto    device = labels.device();
  if (N == 0)
    return torch::zeros({ 0, P, P }, torch::TensorOptions().dtype(torch::kLong).device(device));
  const auto c = Coordinates(frames, P, device);
  auto [x, insideX] = NearestIndex(c[0], W);
  auto [y, insideY] = NearestIndex(c[1], H);
  const at::Tensor value =
    labels.to(torch::kLong).reshape({ -1 }).index_select(0, (y * W + x).reshape({ -1 })).view({ N, P, P });
  std::vector<int64_t> organ;
  for (const PatchFrame & frame : frames)
    organ.push_back(organLabels[static_cast<size_t>(frame.organ)]);
  const at::Tensor target = torch::tensor(organ, torch::kLong).to(device).view({ -1, 1, 1 });
  at::Tensor       mask = value.eq(target).to(torch::kLong);
  const at::Tensor ignored =
    (insideX & insideY).logical_not() | (ignoreLabel >= 0 ? value.eq(ignoreLabel) : value.ne(value));
  return mask.masked_fill(ignored, -1);
}

at::Tensor
FusePicture(const at::Tensor &              probabilities,
            const std::vector<PatchFrame> & frames,
            const at::Tensor &              attention,
            const at::Tensor &              coarseProbabilities,
            const std::array<double, 2> &   spacing,
            const ModelConfig &             config,
            bool                            gaussianWeighting)
{
  const std::string where = "agcl::FusePicture";
  const int64_t     O = static_cast<int64_t>(config.organs.size());
  Require(attention.defined() && attention.dim() == 3 && attention.size(0) == O,
          where,
          "attention of shape " + ShapeText(attention) + "; expected [" + std::to_string(O) + ", H, W]");
  const int64_t H = attention.size(1), W = attention.size(2);
  // Each organ's box: its attention's bounding box (x, y, z = 0).
  std::vector<VoxelBox> boxes(static_cast<size_t>(O));
  for (int64_t o = 0; o < O; ++o)
  {
    const at::Tensor pixels = torch::nonzero(attention[o].to(torch::kCPU));
    if (pixels.size(0) == 0)
      continue;
    const at::Tensor lo = std::get<0>(pixels.min(0)), hi = std::get<0>(pixels.max(0));
    boxes[o].start = { lo[1].item<int64_t>(), lo[0].item<int64_t>(), 0 };
    boxes[o].size = { hi[1].item<int64_t>() - boxes[o].start[0] + 1, hi[0].item<int64_t>() - boxes[o].start[1] + 1, 1 };
  }
  FusionOptions options;
  options.gaussianWeighting = gaussianWeighting;
  options.coarseWeight = config.coarse_weight;
  std::vector<CoarseVote> votes;
  if (config.coarse_weight > 0 && coarseProbabilities.defined())
  {
    Require(coarseProbabilities.dim() == 4 && coarseProbabilities.size(0) == O,
            where,
            "coarse probabilities of shape " + ShapeText(coarseProbabilities) + "; expected [" + std::to_string(O) +
              ", 1, h, w]");
    const auto grid = CoarseGridOfPicture(H, W, spacing, config);
    for (int64_t o = 0; o < O; ++o)
    {
      CoarseVote vote;
      vote.probability = coarseProbabilities[o].to(probabilities.device(), torch::kFloat);
      if (config.coarse_vote_scaled_to_peak) // the organ's peak over the picture, as the 3D fusion
      {
        const double peak = vote.probability.max().item<double>();
        vote.scale = peak > 0.0 ? 1.0 / peak : 1.0;
      }
      vote.toCoarse = { { { grid.toPicture[2].scale, 0.0, 0.0, grid.toPicture[2].offset },
                          { 0.0, grid.toPicture[1].scale, 0.0, grid.toPicture[1].offset },
                          { 0.0, 0.0, 1.0, 0.0 } } };
      votes.push_back(vote);
    }
  }
  const std::vector<at::Tensor> scores = FusePatchScores(probabilities, frames, boxes, options, votes);
  std::vector<double>           thresholds;
  for (int64_t o = 0; o < O; ++o)
    thresholds.push_back(config.OrganThreshold(static_cast<size_t>(o)));
  return DecideLabels(scores, boxes, attention.to(probabilities.device()).unsqueeze(1), thresholds).labels[0];
}

at::Tensor
LabelValuesOfClasses(const at::Tensor & classes, const ModelConfig & config)
{
  std::vector<int64_t> table{ 0 };
  for (const auto & organ : config.organs)
    table.push_back(organ.label);
  const at::Tensor c = classes.to(torch::kCPU, torch::kLong);
  Require(c.numel() == 0 ||
            (c.min().item<int64_t>() >= 0 && c.max().item<int64_t>() < static_cast<int64_t>(table.size())),
          "agcl::LabelValuesOfClasses",
          "classes outside 0.." + std::to_string(table.size() - 1));
  return torch::tensor(table, torch::kLong).index_select(0, c.flatten()).view(c.sizes()).to(torch::kByte);
}

PictureSegmentation
SegmentPicture(AGCLModel &         model,
               const Picture &     picture,
               const c10::Device & device,
               double              overlap,
               int64_t             batchSize,
               bool                gaussianWeighting)
{
  const std::string   where = "agcl::SegmentPicture";
  const ModelConfig & config = model.Config();
  RequirePicture(picture, config, where);
  Require(batchSize >= 1, where, "batch size " + std::to_string(batchSize) + "; expected >= 1");
  const Picture                 on{ picture.pixels.to(device), picture.spacing };
  const PictureCoarse           coarse = CoarsePicture(model, on, device);
  const std::vector<PatchFrame> frames = PicturePatchFrames(coarse.attention, on.spacing, config, 0, 0, overlap);
  const at::Tensor              patches = SamplePicturePatches(on, coarse.attention, frames, config);

  std::vector<at::Tensor> probability;
  {
    torch::NoGradGuard   noGrad;
    const ModuleOnDevice useEncoder(*model.Encoder(), device), useDecoder(*model.Decoder(), device);
    const EvalMode       encoderMode(*model.Encoder()), decoderMode(*model.Decoder());
    const int64_t        P = config.patch_size;
    for (int64_t start = 0; start < patches.size(0); start += batchSize)
    {
      const at::Tensor batch = patches.slice(0, start, std::min(patches.size(0), start + batchSize));
      const auto       features = model.Encoder()->forward(batch);
      probability.push_back(ASPPDecoderImpl::OrganProbability(
        model.Decoder()->forward(features.low_level, features.high_level, { P, P }, features.stem)));
    }
  }
  const at::Tensor    probabilities = probability.empty() ? torch::zeros({ 0, 1, config.patch_size, config.patch_size },
                                                                      on.pixels.options().dtype(torch::kFloat))
                                                          : torch::cat(probability);
  PictureSegmentation result;
  result.labels = LabelValuesOfClasses(
    FusePicture(probabilities, frames, coarse.attention, coarse.probabilities, on.spacing, config, gaussianWeighting),
    config);
  result.coarse = LabelValuesOfClasses(coarse.classes, config);
  result.patches = static_cast<int64_t>(frames.size());
  return result;
}

} // namespace agcl
