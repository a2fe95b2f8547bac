/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkLabelFusionFilter_h
#define itkLabelFusionFilter_h

#include "itkImage.h"
#include "itkImageSource.h"
#include "itkTensorDataObject.h"

#include "agcl/PatchStages.h"

#include <map>
#include <vector>

namespace itk {

/** \class LabelFusionFilter
 * \brief Fuses per-organ patch probabilities into one multi-organ label map ("label fusion",
 * paper Fig. 2; the rule is ours).
 *
 * Input: a TensorDataObject with "probability" [N, 1, P, P] and per-patch metadata (organ,
 * first-pixel physical point, spacing, axes), a reference image for the geometry, and each
 * organ's attention map. Every patch pixel is added to the voxel nearest to its physical point;
 * overlapping patches are averaged (optionally weighted by a Gaussian, sigma = P/4, toward patch
 * centres). With CoarseWeight w > 0 and a coarse probability map set for an organ
 * (SetCoarseProbabilityMap: the coarse network's softmax probability of the organ, on any grid,
 * e.g. the coarse one), the organ's score at a voxel is (1 - w) x its averaged probability +
 * w x the coarse probability linearly interpolated at the voxel's centre (clamped to the coarse
 * grid's edge); with CoarseVoteScaledToPeak on, each organ's coarse probability is first
 * divided by its map's largest value (when > 0); otherwise (w = 0, the default, or no coarse
 * map) the score is the averaged probability. A voxel takes the organ whose score lies at or
 * above its threshold (Threshold, default 0.5, or the organ's own, SetOrganThreshold) by the
 * largest margin (score - threshold; with one threshold for all organs: the highest score), only
 * inside that organ's attention region; ties go to the organ listed first (lowest label value);
 * background elsewhere. Post-processing (on by default): each organ keeps
 * its largest 26-connected component and its holes are filled (with background voxels only).
 * Output 0 is the label map with the reference geometry. With ProbabilityMaps on (off by
 * default: O float volumes), GetProbabilityMap(organ) gives the score volume of an organ (the
 * averaged probability, or the blend with the coarse vote; float; 0 outside the organ's
 * attention region, where the organ cannot be labelled anyway).
 *
 * Memory: each organ accumulates (float sum and weight) only over the bounding box of its
 * attention map, so beyond the output the filter needs about 8 bytes per voxel of the organs'
 * boxes, not per voxel of the volume per organ; post-processing works on each organ's box.
 * \ingroup AGCLSegmentation
 */
template <typename TLabelImage>
class ITK_TEMPLATE_EXPORT LabelFusionFilter : public ImageSource<TLabelImage>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(LabelFusionFilter);
  using Self = LabelFusionFilter;
  using Superclass = ImageSource<TLabelImage>;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkNewMacro(Self);
  itkTypeMacro(LabelFusionFilter, ImageSource);

  using LabelImageType = TLabelImage;
  using LabelType = typename TLabelImage::PixelType;
  static constexpr unsigned int ImageDimension = TLabelImage::ImageDimension;
  using ReferenceType = ImageBase<ImageDimension>;
  using ProbabilityImageType = Image<float, ImageDimension>;

  void
  SetPatches(const TensorDataObject * patches);
  void
  SetReferenceImage(const ReferenceType * reference);
  /** The attention map of organ `organ` (not 0, the background); nullptr removes it. */
  void
  SetAttentionMap(LabelType organ, const LabelImageType * attention);
  /** The coarse network's probability of `organ` (0..1, any grid: sampled at each voxel's
   *  physical point), used when CoarseWeight > 0. */
  void
  SetCoarseProbabilityMap(LabelType organ, const ProbabilityImageType * probability);

  /** The coarse vote's weight w in 0..1 (default 0: the fine stage alone). */
  itkSetMacro(CoarseWeight, double);
  itkGetConstMacro(CoarseWeight, double);
  /** Divide each organ's coarse probability by its map's largest value before the blend (off by
   *  default): an organ the coarse network never ranks with confidence is not voted down. */
  itkSetMacro(CoarseVoteScaledToPeak, bool);
  itkGetConstMacro(CoarseVoteScaledToPeak, bool);
  itkBooleanMacro(CoarseVoteScaledToPeak);

  itkSetMacro(Threshold, double);
  itkGetConstMacro(Threshold, double);
  /** An organ's own threshold (0..1), replacing Threshold for it; organs then compete by their
   *  score's margin above their own threshold. */
  void
  SetOrganThreshold(LabelType organ, double threshold);
  /** The threshold `organ` is decided with: its own, or Threshold. */
  double
  GetOrganThreshold(LabelType organ) const;
  /** Back to Threshold for every organ. */
  void
  ClearOrganThresholds();
  itkSetMacro(GaussianWeighting, bool);
  itkGetConstMacro(GaussianWeighting, bool);
  itkBooleanMacro(GaussianWeighting);
  itkSetMacro(PostProcessing, bool);
  itkGetConstMacro(PostProcessing, bool);
  itkBooleanMacro(PostProcessing);

  /** The post-processing of `organs` in `labels` (its buffered region), in place: each organ
   *  keeps its largest 26-connected component and its holes are filled with the organ where
   *  they are background. Each organ is processed on the bounding box of its voxels; the
   *  organs in parallel (itk::KeepLargestComponentsAndFillHoles, itkLabelComponents.h). */
  static void
  KeepLargestComponentsAndFillHoles(LabelImageType * labels, const std::vector<LabelType> & organs);

  /** Where each patch of `metadata` lies in `reference`'s continuous index: pixel (q, r) at
   *  first + q column + r row, with GenerateData's arithmetic (organ left 0, planar false: the
   *  caller sets the organ). For running the fusion elsewhere (agcl::FusePatchScores). 3-D. */
  static std::vector<agcl::PatchFrame>
  PatchFrames(const ReferenceType & reference, const TensorDataObject::MetadataType & metadata);
  /** The sub-pixels per patch pixel along a patch axis whose one-pixel step in the reference's
   *  continuous index is `step` (a PatchFrame's column or row): ceil(|step|), the step's length
   *  in voxels (0.1% tolerance), 1 when it is not longer than a voxel. Measured along the
   *  patch's own axes: an axial patch at the in-plane voxel spacing is not split because the
   *  slices are thinner than the pixels (it was, up to 2026-12-08, with the finest spacing of any
   *  axis: 4x the painting work at 512 x 512 x 397), and with isotropic voxels the value is
   *  ceil(patch spacing / voxel spacing) as before. */
  static int64_t
  Subdivisions(const std::array<double, 3> & step);
  /** The affine map from `reference`'s voxel index v to `coarse`'s continuous index relative to
   *  its start index, c = M v + t, as rows (M | t); BlendCoarseProbability's arithmetic when the
   *  coarse start index is 0 (otherwise the start is folded into t: last-bit differences). 3-D. */
  static std::array<std::array<double, 4>, 3>
  CoarseIndexMapping(const ProbabilityImageType & coarse, const ReferenceType & reference);

  /** Keep the per-organ probability volumes for GetProbabilityMap (off by default). */
  itkSetMacro(ProbabilityMaps, bool);
  itkGetConstMacro(ProbabilityMaps, bool);
  itkBooleanMacro(ProbabilityMaps);

  /** The averaged probability volume of `organ` (after Update() with ProbabilityMaps on). */
  const ProbabilityImageType *
  GetProbabilityMap(LabelType organ) const;

  using ScoreImageType = Image<unsigned char, ImageDimension>;
  /** Keep the score map (off by default): one byte per voxel, the score of the organ the voxel
   *  was given by the fusion, max(1, round(255 x score)), 0 for background. Taken before
   *  post-processing, which only removes voxels from organs or fills holes with background
   *  voxels (score 0): an organ's final voxels with a nonzero score are those the fusion gave it. */
  itkSetMacro(ScoreMap, bool);
  itkGetConstMacro(ScoreMap, bool);
  itkBooleanMacro(ScoreMap);

  /** The score map (after Update() with ScoreMap on). */
  const ScoreImageType *
  GetScoreImage() const;

protected:
  LabelFusionFilter();
  ~LabelFusionFilter() override = default;
  void
  VerifyPreconditions() ITKv5_CONST override;
  void
  VerifyInputInformation() ITKv5_CONST override;
  void
  GenerateOutputInformation() override;
  void
  GenerateInputRequestedRegion() override;
  void
  GenerateData() override;
  void
  PrintSelf(std::ostream & os, Indent indent) const override;

private:
  const TensorDataObject *
  GetPatches() const;
  const ReferenceType *
  GetReference() const;
  /** scores (over `box`, x fastest) <- (1 - weight) scores + weight x scale x `coarse`
   *  interpolated at each voxel of `reference`'s grid. */
  static void
  BlendCoarseProbability(const ProbabilityImageType &                coarse,
                         const ReferenceType &                       reference,
                         const typename LabelImageType::RegionType & box,
                         double                                      weight,
                         double                                      scale,
                         std::vector<float> &                        scores);

  std::map<LabelType, typename LabelImageType::ConstPointer>       m_Attention;
  std::map<LabelType, typename ProbabilityImageType::Pointer>      m_Probability;
  std::map<LabelType, typename ProbabilityImageType::ConstPointer> m_CoarseProbability;
  double                                                           m_Threshold{ 0.5 };
  double                                                           m_CoarseWeight{ 0.0 };
  std::map<LabelType, double>                                      m_OrganThreshold;
  bool                                                             m_CoarseVoteScaledToPeak{ false };
  bool                                                             m_GaussianWeighting{ false };
  bool                                                             m_PostProcessing{ true };
  bool                                                             m_ProbabilityMaps{ false };
  bool                                                             m_ScoreMap{ false };
  typename ScoreImageType::Pointer                                 m_Score;
};

} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkLabelFusionFilter.hxx"
#endif

#endif
