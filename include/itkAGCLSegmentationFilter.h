/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkAGCLSegmentationFilter_h
#define itkAGCLSegmentationFilter_h

#include "itkAGCLModelObject.h"
#include "itkAGCLOrganReport.h"
#include "itkImageToImageFilter.h"

#include <map>
#include <string>

namespace itk {

/** \class AGCLSegmentationFilter
 * \brief Multi-organ segmentation of a CT volume with an AGCL model, in one filter: CT in,
 * multi-organ label map (the model's organ label values, 0 background) out, with the input's
 * geometry.
 *
 * It holds the mini-pipeline of the method (paper Fig. 2): the model's coarse network on the
 * whole volume at its coarse spacing (CoarseAttentionFilter::ComputeCoarse: labels and each
 * organ's attention seed), then, slab by slab along the axial axis (SlabThickness slices): each
 * organ's seed resampled over the slab (grown by the attention margin so that the dilation is
 * exact) -> attention maps (CoarseAttentionFilter::ComputeAttentionFromSeed) -> inference query patches
 * (QueryPatchSamplerFilter)
 * -> encoder (AGCLEncoderFilter) -> decoder (ASPPDecoderFilter), both on chunks of 4 batches of
 * patches -> fusion of the slab (LabelFusionFilter,
 * whose accumulators span only the slab and the organs' attention boxes; with the model's
 * coarse_weight > 0 each organ's score blends in the coarse network's probability) -> the
 * slab's labels copied into the output. Finally each organ keeps its largest connected component with its
 * holes filled (PostProcessing, on by default). Patch size and spacing, window, margin,
 * overlap, threshold and coarse weight come from the model bundle (with SetCoarseLabelMap
 * there is no coarse probability: the fusion is the fine stage's alone).
 *
 * Memory: beyond the input and the output, what is held at once is the coarse-grid volume (the
 * coarse network runs in windows of the model's coarse_window_slices), one slab's patches,
 * attention maps and accumulators, and one chunk's features; freed memory is handed back to the
 * system after each slab (glibc). It does not grow with the number of slices
 * (test/itk/SegmentationMemoryCheck.cxx); post-processing needs memory in proportion to each
 * organ's bounding box. Slab-wise fusion equals whole-volume fusion when the slices are axial
 * planes (the direction's axial axis is the z axis, as in almost every CT); on a tilted grid
 * the few patch pixels that fall into a neighbouring slab are dropped. With ProbabilityMaps
 * on, the per-organ probability volumes (8-bit) are kept too: they then grow with the volume.
 *
 * The model comes from SetModelFileName (loaded at the first Update after the name changes; a
 * missing, garbage, truncated or inconsistent file is an itk::ExceptionObject naming it) or
 * SetModel (a loaded AGCLModelObject, shared). SetCoarseLabelMap replaces the coarse network by
 * a segmentation from any tool (the input's geometry). Device: "cpu", "cuda", "cuda:N"
 * (checked before running). CPU threads are the process-wide setting (agcl::ConfigureThreads).
 *
 * Progress: ProgressEvent from 0 to 1, monotonic (coarse network 10%, slabs 85%,
 * post-processing 5%). AbortGenerateData (e.g. set from a progress observer) stops the filter
 * between batches with itk::ProcessAborted; the output is then not valid, so a downstream
 * writer writes nothing. GetStageSeconds() reports the time of each stage of the last run.
 * \ingroup AGCLSegmentation
 */
template <typename TInputImage, typename TLabelImage>
class ITK_TEMPLATE_EXPORT AGCLSegmentationFilter : public ImageToImageFilter<TInputImage, TLabelImage>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(AGCLSegmentationFilter);
  using Self = AGCLSegmentationFilter;
  using Superclass = ImageToImageFilter<TInputImage, TLabelImage>;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkNewMacro(Self);
  itkTypeMacro(AGCLSegmentationFilter, ImageToImageFilter);

  using InputImageType = TInputImage;
  using LabelImageType = TLabelImage;
  using LabelType = typename TLabelImage::PixelType;
  static constexpr unsigned int ImageDimension = TInputImage::ImageDimension;
  static_assert(ImageDimension == 3, "AGCLSegmentationFilter segments 3D volumes");

  itkSetStringMacro(ModelFileName);
  itkGetStringMacro(ModelFileName);
  /** A loaded model (takes precedence over ModelFileName). */
  void
  SetModel(AGCLModelObject * model);
  /** The model used (after Update when it comes from ModelFileName). */
  AGCLModelObject *
  GetModel() const
  {
    return m_Model;
  }

  /** Optional: a coarse multi-organ label map with the input's geometry, used instead of the
   *  model's coarse network. */
  void
  SetCoarseLabelMap(const LabelImageType * labels);
  const LabelImageType *
  GetCoarseLabelMap() const;

  itkSetStringMacro(Device);
  itkGetStringMacro(Device);
  itkSetMacro(BatchSize, unsigned int);
  itkGetConstMacro(BatchSize, unsigned int);
  /** Axial slices per slab (memory vs. per-slab overhead). */
  /** The networks' precision: "float32" (default), "bfloat16" (autocast on the CPU or CUDA) or
   *  "float16" (autocast, CUDA only). The fusion accumulates in float32 either way. Off by
   *  default: Documentation/performance.md has what it changes. */
  itkSetStringMacro(Precision);
  itkGetStringMacro(Precision);
  itkSetMacro(SlabThickness, unsigned int);
  itkGetConstMacro(SlabThickness, unsigned int);
  itkSetMacro(GaussianWeighting, bool);
  itkGetConstMacro(GaussianWeighting, bool);
  itkBooleanMacro(GaussianWeighting);
  itkSetMacro(PostProcessing, bool);
  itkGetConstMacro(PostProcessing, bool);
  itkBooleanMacro(PostProcessing);

  /** Keep each organ's fused probability volume (off by default: one byte per voxel and
   *  organ), quantised to 0..255 = probability x 255 rounded; 0 outside the organ's attention. */
  itkSetMacro(ProbabilityMaps, bool);
  itkGetConstMacro(ProbabilityMaps, bool);
  itkBooleanMacro(ProbabilityMaps);
  using ProbabilityImageType = Image<unsigned char, ImageDimension>;
  /** The probability volume of `organ` after Update() with ProbabilityMaps on. */
  const ProbabilityImageType *
  GetProbabilityMap(LabelType organ) const;

  /** Keep what the coarse stage gave (off by default; one byte per voxel and organ, plus one):
   *  the coarse label map in the input's geometry (nearest neighbour from the coarse grid, or
   *  the given coarse map) and each organ's attention map over the whole volume. For diagnosis:
   *  `agcl segment --save-coarse` writes them, `agcl evaluate` measures attention recall. */
  /** On (default): the attention maps through the core's tensor functions
   *  (CoarseAttentionFilter's *Tensor functions, on the CPU), on per-organ slab buffers reused
   *  from slab to slab; Off: through ITK's resampling and Maurer distance map (the reference of
   *  the tests). Both give the same label map (tested). */
  itkSetMacro(TensorStages, bool);
  itkGetConstMacro(TensorStages, bool);
  itkBooleanMacro(TensorStages);
  /** Sampling, fusion and the label decision as the core's tensor functions
   *  (agcl/PatchStages.h) on the filter's Device: the CT goes to the device once, each slab's
   *  attention masks once, the patches and the network's probabilities stay there, and only
   *  the slab's labels and scores (and probability maps) come back. Always used on a CUDA
   *  device; on the CPU off by default (the ITK loops are faster there, performance.md), and
   *  TensorPatchStagesOn runs the same functions with LibTorch's CPU kernels. Same label map as
   *  the ITK loops except where float32 sums in another order move a score across a threshold
   *  or a tie (tested). */
  itkSetMacro(TensorPatchStages, bool);
  itkGetConstMacro(TensorPatchStages, bool);
  itkBooleanMacro(TensorPatchStages);
  itkSetMacro(KeepCoarseOutputs, bool);
  itkGetConstMacro(KeepCoarseOutputs, bool);
  itkBooleanMacro(KeepCoarseOutputs);
  /** The coarse label map after Update() with KeepCoarseOutputs on. */
  const LabelImageType *
  GetCoarseLabelMapOutput() const;
  /** The attention map (1 inside) of `organ` after Update() with KeepCoarseOutputs on. */
  const LabelImageType *
  GetAttentionMap(LabelType organ) const;

  /** Seconds spent in each stage of the last Update: "coarse", "attention", "sampling",
   *  "encoder", "decoder", "fusion", "postprocessing". */
  const std::map<std::string, double> &
  GetStageSeconds() const
  {
    return m_StageSeconds;
  }
  /** Query patches processed in the last Update. */
  itkGetConstMacro(NumberOfPatches, SizeValueType);

  /** The organs of the last Update's label map, in the model's order: voxels, volume in mL,
   *  the fusion's mean score, and plausibility warnings (an organ missing; checks against the
   *  model's own statistics where its bundle records them, which no bundle does yet:
   *  `statistics` says "no statistics"). Costs one byte per voxel during Update. */
  const AGCLOrganReport &
  GetOrganReport() const
  {
    return m_OrganReport;
  }

protected:
  AGCLSegmentationFilter();
  ~AGCLSegmentationFilter() override = default;

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
  void
  LoadModelIfNeeded();

  std::string                                                 m_ModelFileName;
  AGCLModelObject::Pointer                                    m_Model;
  bool                                                        m_ModelFromFile{ false };
  std::string                                                 m_LoadedFileName;
  std::string                                                 m_Device{ "cpu" };
  unsigned int                                                m_BatchSize{ 32 };
  unsigned int                                                m_SlabThickness{ 16 };
  bool                                                        m_GaussianWeighting{ false };
  bool                                                        m_PostProcessing{ true };
  bool                                                        m_ProbabilityMaps{ false };
  std::map<LabelType, typename ProbabilityImageType::Pointer> m_Probability;
  bool                                                        m_KeepCoarseOutputs{ false };
  bool                                                        m_TensorStages{ true };
  bool                                                        m_TensorPatchStages{ false };
  std::string                                                 m_Precision{ "float32" };
  typename LabelImageType::Pointer                            m_CoarseOutput;
  std::map<LabelType, typename LabelImageType::Pointer>       m_AttentionOutputs;
  std::map<std::string, double>                               m_StageSeconds;
  SizeValueType                                               m_NumberOfPatches{ 0 };
  AGCLOrganReport                                             m_OrganReport;
};

} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkAGCLSegmentationFilter.hxx"
#endif

#endif
