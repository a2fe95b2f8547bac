/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkQueryPatchSamplerFilter_h
#define itkQueryPatchSamplerFilter_h

#include "itkProcessObject.h"
#include "itkTensorDataObject.h"

#include "agcl/PatchStages.h"

#include <map>
#include <vector>

namespace itk {

/** \class QueryPatchSamplerFilter
 * \brief Query patches (paper §III-A, Fig. 2): 2D axial patches per organ with two channels,
 * the window-normalised CT and the organ's attention map, as a TensorDataObject.
 *
 * Output tensors: "image" float32 [N, 2, P, P] (channel 0: CT clipped to the window and scaled to
 * 0..1; channel 1: attention 0/1), and with a label map "label" uint8 [N, 1, P, P] (1 where the
 * label map has the patch's organ). Metadata per patch: organ, modality, slice, first-pixel index
 * and physical point, spacing and axes.
 *
 * Patches are sampled in a canonical physical frame: columns along the patient's left (+x of
 * LPS), rows along posterior (+y), one patch pixel = PatchSpacingMM (0: the image's finest
 * in-plane spacing). So an image in any orientation (LPS, RAS, flipped axes) gives the same
 * patches as the same image reoriented. "Axial" is the image axis whose direction is closest to
 * the head-feet axis. The CT is interpolated linearly, attention and labels by nearest neighbour;
 * points outside the image read as air (window low end) with no attention.
 *
 * Modes:
 * - Training: PatchesPerOrgan patches per organ, centres drawn uniformly among the organ's
 *   attention voxels (so centred inside the attention region), seeded by Seed.
 * - Inference: on every axial slice that has attention, tiles with Overlap cover the attention
 *   bounding box of that slice, so that every attention voxel is inside some tile.
 * \ingroup AGCLSegmentation
 */
template <typename TInputImage, typename TLabelImage>
class ITK_TEMPLATE_EXPORT QueryPatchSamplerFilter : public ProcessObject
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(QueryPatchSamplerFilter);
  using Self = QueryPatchSamplerFilter;
  using Superclass = ProcessObject;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkNewMacro(Self);
  itkTypeMacro(QueryPatchSamplerFilter, ProcessObject);

  using InputImageType = TInputImage;
  using LabelImageType = TLabelImage;
  using LabelType = typename TLabelImage::PixelType;
  static constexpr unsigned int ImageDimension = TInputImage::ImageDimension;
  static_assert(ImageDimension == 3, "QueryPatchSamplerFilter samples axial patches from 3D volumes");

  enum class ModeEnum : uint8_t
  {
    Training,
    Inference
  };

  void
  SetInput(const InputImageType * image);
  const InputImageType *
  GetInput() const;
  /** The attention map (non-zero = attended) of the organ with label value `organ`; nullptr
   *  removes that organ's map (as ITK's SetInput(nullptr)). */
  void
  SetAttentionMap(LabelType organ, const LabelImageType * attention);
  /** Training: the ground-truth label map, for the "label" tensor. */
  void
  SetLabelMap(const LabelImageType * labels);

  TensorDataObject *
  GetOutput();

  /** The index axis whose direction is closest to the head-feet (z) axis: the axial axis. */
  static unsigned int
  AxialAxis(const typename InputImageType::DirectionType & direction);

  /** The patches that GenerateData samples, without sampling them: their metadata (as the
   * output's) and their frames in the input's continuous index (agcl::PatchFrame: pixel (q, r)
   * at first + q column + r row; organ = the patch's organ's position among the attention maps
   * in label order; planar for a tile that runs along the buffer's x and y and lies within 1e-6
   * voxel of a slice). The inputs must be up to date (the upstream updated); the same checks as
   * Update. For running the sampling elsewhere (agcl::SampleQueryPatches on a device). */
  struct PatchPlan
  {
    TensorDataObject::MetadataType                  metadata;
    std::vector<agcl::PatchFrame>                   frames;
    std::vector<typename InputImageType::PointType> centres; // each patch's centre pixel (physical)
  };
  PatchPlan
  PlanPatches() const;

  itkSetEnumMacro(Mode, ModeEnum);
  itkGetEnumMacro(Mode, ModeEnum);
  itkSetMacro(PatchSize, unsigned int);
  itkGetConstMacro(PatchSize, unsigned int);
  itkSetMacro(PatchSpacingMM, double);
  itkGetConstMacro(PatchSpacingMM, double);
  itkSetMacro(PatchesPerOrgan, unsigned int);
  itkGetConstMacro(PatchesPerOrgan, unsigned int);
  itkSetMacro(Overlap, double);
  itkGetConstMacro(Overlap, double);
  itkSetMacro(Seed, uint64_t);
  itkGetConstMacro(Seed, uint64_t);
  itkSetMacro(WindowLow, double);
  itkGetConstMacro(WindowLow, double);
  itkSetMacro(WindowHigh, double);
  itkGetConstMacro(WindowHigh, double);
  itkSetMacro(Modality, int);
  itkGetConstMacro(Modality, int);

protected:
  QueryPatchSamplerFilter();
  ~QueryPatchSamplerFilter() override = default;
  using Superclass::MakeOutput;
  DataObjectPointer MakeOutput(DataObjectPointerArraySizeType) override;
  void
  VerifyPreconditions() ITKv5_CONST override;
  void
  VerifyInputInformation() ITKv5_CONST override;
  void
  GenerateData() override;
  void
  PrintSelf(std::ostream & os, Indent indent) const override;

private:
  std::map<LabelType, typename LabelImageType::ConstPointer> m_Attention;
  ModeEnum                                                   m_Mode{ ModeEnum::Inference };
  unsigned int                                               m_PatchSize{ 64 };
  double                                                     m_PatchSpacingMM{ 0.0 };
  unsigned int                                               m_PatchesPerOrgan{ 16 };
  double                                                     m_Overlap{ 0.25 };
  uint64_t                                                   m_Seed{ 1 };
  double                                                     m_WindowLow{ -175.0 };
  double                                                     m_WindowHigh{ 275.0 };
  int                                                        m_Modality{ 0 };
};

} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkQueryPatchSamplerFilter.hxx"
#endif

#endif
