/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_PictureStages_h
#define agcl_PictureStages_h

#include "agcl/GridResample.h"
#include "agcl/ModelConfig.h"
#include "agcl/PatchStages.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <array>
#include <cstdint>
#include <vector>

namespace agcl {

class AGCLModel;

/** The pipeline's stages on a 2D picture (issue 19: the paper's "2D for natural image"), as
 *  tensor work on the picture's device. A picture is a one-slice volume to the 3D stages: the
 *  planar coarse network runs on it as one slice, the margin grows in its plane only, and its
 *  query patches are axis-aligned crops; the frames are agcl::PatchFrame (z = 0) so that the
 *  fusion and the decision are the 3D ones (FusePatchScores, DecideLabels). Pictures have no
 *  patient axes: x is the column (left to right), y the row (top to bottom). */
struct Picture
{
  /** [C, H, W], raw values (0..255 for 8-bit photographs), any real or integer dtype;
   *  C = the model's image.channels. */
  at::Tensor pixels;
  /** The pixel spacing (x, y) in mm: 1 x 1 for a photograph. */
  std::array<double, 2> spacing{ 1.0, 1.0 };
};

/** The coarse grid of a picture of `height` x `width` pixels: the config's coarse spacing (x, y)
 *  over the picture's extent, the lower edges of the two grids coinciding (as the 3D coarse
 *  grid), and the mappings between the two grids' indices (z: the identity). */
struct PictureCoarseGrid
{
  std::array<int64_t, 3>     size{ 1, 1, 1 }; ///< (1, h, w)
  std::array<AxisMapping, 3> fromPicture;     ///< coarse voxel -> picture continuous index (z, y, x)
  std::array<AxisMapping, 3> toPicture;       ///< picture pixel -> coarse continuous index (z, y, x)
};
PictureCoarseGrid
CoarseGridOfPicture(int64_t height, int64_t width, const std::array<double, 2> & spacing, const ModelConfig & config);

/** The picture on its coarse grid, as the coarse network reads it: [C, 1, h, w] float32, each
 *  channel normalised (NormalizeChannels, the coarse window or the image statistics) then
 *  resampled bilinearly (ResampleLinear; outside the picture 0). */
at::Tensor
PictureOnCoarseGrid(const Picture & picture, const ModelConfig & config);

/** A label map [H, W] (any integer dtype) on the coarse grid by nearest neighbour: [1, h, w]. */
at::Tensor
LabelsOnCoarseGrid(const at::Tensor & labels, const std::array<double, 2> & spacing, const ModelConfig & config);

/** The coarse stage on a picture: the coarse network's classes on the picture's grid
 *  ([H, W] uint8: 0 background, i = organ i-1), each organ's attention ([O, H, W] bool: its seed
 *  (AGCLModel::PredictCoarse) brought to the picture by nearest neighbour, grown by the config's
 *  margin_mm in the picture's plane, GrowByMargin) and the coarse probabilities ([O, 1, h, w]
 *  float 0..1 on the coarse grid, for the fusion's coarse vote). */
struct PictureCoarse
{
  at::Tensor classes;
  at::Tensor attention;
  at::Tensor probabilities;
};
PictureCoarse
CoarsePicture(AGCLModel & model, const Picture & picture, const c10::Device & device);

/** Each organ's attention from a class map [H, W] (0 background, i = organ i-1; other values,
 *  e.g. a void label, attend nothing): [O, H, W] bool, class o + 1 grown by `marginMM`. */
at::Tensor
AttentionOfClasses(const at::Tensor & classes, int64_t organs, const std::array<double, 2> & spacing, double marginMM);

/** Where the query patches of a picture lie. One patch pixel is the config's patch_spacing_mm
 *  (0: the picture's finer spacing). Training (`patchesPerOrgan` > 0): that many patches per
 *  organ with attention, centres drawn uniformly among its attention pixels (std::mt19937_64
 *  seeded by seed and organ, the rule of QueryPatchSamplerFilter). Inference
 *  (`patchesPerOrgan` == 0): tiles with `overlap` covering each organ's attention bounding box,
 *  every attention pixel inside some tile (the 3D sampler's tiling of one slice). The frames'
 *  organ is the organ's index (0..O-1); every frame is planar on slice 0. */
std::vector<PatchFrame>
PicturePatchFrames(const at::Tensor &            attention,
                   const std::array<double, 2> & spacing,
                   const ModelConfig &           config,
                   int64_t                       patchesPerOrgan,
                   uint64_t                      seed,
                   double                        overlap = 0.25);

/** The query patches [N, C + 1, P, P] float32 of `frames`: the picture's channels normalised
 *  (NormalizeChannels, the patch window or the image statistics) and interpolated bilinearly
 *  (ITK's linear rule: the edge pixels beyond the edge; a point outside [-0.5, n - 0.5) reads 0),
 *  then the frame's organ's attention by nearest neighbour (halves rounded up; 0 outside).
 *  std::invalid_argument for shapes that do not fit. */
at::Tensor
SamplePicturePatches(const Picture &                 picture,
                     const at::Tensor &              attention,
                     const std::vector<PatchFrame> & frames,
                     const ModelConfig &             config);

/** A label map [H, W] read at the patches' pixels by nearest neighbour: [N, P, P] int64, 1 where
 *  the label is the frame's organ's label value, -1 where it is `ignoreLabel` (void; -1 for
 *  none) or the pixel lies outside the picture, 0 elsewhere. */
at::Tensor
SamplePictureMasks(const at::Tensor &              labels,
                   const std::vector<PatchFrame> & frames,
                   int64_t                         patchSize,
                   const std::vector<int64_t> &    organLabels,
                   int64_t                         ignoreLabel);

/** The fusion and decision of a picture's patches: `probabilities` [N, 1, P, P] (the organ
 *  probability of each patch pixel) at `frames`, FusePatchScores over each organ's attention box
 *  (Gaussian pixel weights when `gaussianWeighting`; with the config's coarse_weight > 0 and
 *  `coarseProbabilities` [O, 1, h, w] (CoarsePicture's) the coarse vote, scaled to each organ's
 *  peak with coarse_vote_scaled_to_peak; `spacing` the picture's, for the coarse grid), then DecideLabels (the config's
 * thresholds, inside each organ's `attention` [O, H, W]). Returns the classes [H, W] int32 (organ index + 1, 0
 *  background) on the probabilities' device. */
at::Tensor
FusePicture(const at::Tensor &              probabilities,
            const std::vector<PatchFrame> & frames,
            const at::Tensor &              attention,
            const at::Tensor &              coarseProbabilities,
            const std::array<double, 2> &   spacing,
            const ModelConfig &             config,
            bool                            gaussianWeighting = false);

/** Classes (0 background, i = organ i-1; any integer tensor) as the organs' label values, uint8
 *  on the CPU, same shape. */
at::Tensor
LabelValuesOfClasses(const at::Tensor & classes, const ModelConfig & config);

/** The whole pipeline on a picture: coarse stage, query patches (inference tiling), encoder and
 *  decoder (organ probability per patch pixel), the fusion (FusePatchScores: Gaussian pixel
 *  weights when `gaussianWeighting`, off by default as in AGCLSegmentationFilter; the config's
 *  coarse_weight vote, scaled to each organ's peak with coarse_vote_scaled_to_peak) and the decision (config
 * thresholds, inside each organ's attention). labels [H, W] uint8 (the organs' label values, 0 background), coarse [H,
 * W] uint8 (the coarse network's label values), on the CPU. */
struct PictureSegmentation
{
  at::Tensor labels;
  at::Tensor coarse;
  int64_t    patches = 0;
};
PictureSegmentation
SegmentPicture(AGCLModel &         model,
               const Picture &     picture,
               const c10::Device & device,
               double              overlap = 0.25,
               int64_t             batchSize = 32,
               bool                gaussianWeighting = false);

} // namespace agcl

#endif
