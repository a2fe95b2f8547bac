/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkCoarseAttentionFilter_h
#define itkCoarseAttentionFilter_h

#include "itkImageToImageFilter.h"

#include <vector>

namespace itk {

/** \class CoarseAttentionFilter
 * \brief Coarse multi-organ localisation and per-organ attention maps (paper §III-A, Fig. 2).
 *
 * Input 0: the CT volume. Output 0: the coarse multi-organ label map (the input's geometry).
 * Outputs 1..O: one binary attention map per organ (1 inside), the organ's coarse region
 * dilated by MarginMM millimetres: a voxel is in the map when the Euclidean distance in mm
 * (spacing-aware, so correct on anisotropic voxels) from its centre to the nearest voxel of the
 * organ is at most MarginMM. GetAttentionMap(label) finds an organ's map. An organ absent from
 * the coarse map gives an empty attention map, not an error.
 *
 * The coarse region comes from SetCoarseLabelMap (a segmentation from any tool, with the input's
 * geometry). Running agcl::CoarseSegmentationNet from a model bundle when no coarse map is
 * given is not implemented yet: Update() then throws an itk::ExceptionObject saying so.
 *
 * MarginMM defaults to 10 mm. The paper gives no margin (it is in its unavailable supplement);
 * 10 mm is 2-3 voxels of a 3.5-4 mm coarse grid, enough to cover the boundary errors a coarse
 * segmentation makes there, while the map stays organ-specific (neighbouring organs are mostly
 * farther apart than that from the organ's core). It is a parameter.
 * \ingroup AGCLSegmentation
 */
template <typename TInputImage, typename TLabelImage>
class ITK_TEMPLATE_EXPORT CoarseAttentionFilter : public ImageToImageFilter<TInputImage, TLabelImage>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(CoarseAttentionFilter);
  using Self = CoarseAttentionFilter;
  using Superclass = ImageToImageFilter<TInputImage, TLabelImage>;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkNewMacro(Self);
  itkTypeMacro(CoarseAttentionFilter, ImageToImageFilter);

  using InputImageType = TInputImage;
  using LabelImageType = TLabelImage;
  using LabelType = typename TLabelImage::PixelType;
  static constexpr unsigned int ImageDimension = TInputImage::ImageDimension;
  static_assert(ImageDimension == 3, "CoarseAttentionFilter works on 3D volumes");

  /** The organs' label values; one attention output per organ, in this order. Default: BTCV's 1..12. */
  void
  SetOrganLabels(const std::vector<LabelType> & labels);
  const std::vector<LabelType> &
  GetOrganLabels() const
  {
    return m_OrganLabels;
  }

  /** A coarse multi-organ label map with the input's geometry, from any tool. */
  void
  SetCoarseLabelMap(const LabelImageType * labels);
  const LabelImageType *
  GetCoarseLabelMap() const;

  itkSetMacro(MarginMM, double);
  itkGetConstMacro(MarginMM, double);

  /** Output 0. */
  LabelImageType *
  GetCoarseLabelOutput();
  /** The attention map of the organ with label value `label`; itk::ExceptionObject if not an organ. */
  LabelImageType *
  GetAttentionMap(LabelType label);

protected:
  CoarseAttentionFilter();
  ~CoarseAttentionFilter() override = default;

  void
  VerifyPreconditions() ITKv5_CONST override;
  void
  VerifyInputInformation() ITKv5_CONST override;
  void
  GenerateInputRequestedRegion() override;
  void
  EnlargeOutputRequestedRegion(DataObject * output) override;
  void
  GenerateData() override;
  void
  PrintSelf(std::ostream & os, Indent indent) const override;

private:
  std::vector<LabelType> m_OrganLabels;
  double                 m_MarginMM{ 10.0 };
};

} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkCoarseAttentionFilter.hxx"
#endif

#endif
