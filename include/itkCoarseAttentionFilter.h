/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkCoarseAttentionFilter_h
#define itkCoarseAttentionFilter_h

#include "itkAGCLModelObject.h"
#include "agcl/AttentionMap.h"
#include "itkImage.h"
#include "itkImageToImageFilter.h"

#include <string>

#include <map>
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
 * The coarse region comes from one of two sources:
 * - SetCoarseLabelMap: a segmentation from any tool, with the input's geometry;
 * - SetModel / SetModelFileName: the model's coarse network (agcl::CoarseSegmentationNet), run
 *   on Device. Output 0 is its argmax; each organ's attention grows from the organ's seed
 *   (ComputeCoarse): its argmax region, and with the model's coarse.attention_probability
 *   p > 0 also every coarse voxel where its probability is at least p. The CT is resampled (linearly, identity
 * transform, same direction) to the model's coarse spacing on a grid covering the input's extent, window-normalised to
 * 0..1 (coarse window), segmented, and the classes are resampled back to the input's grid by nearest neighbour
 * (ComputeCoarseLabelMap and ResampleLabels do these steps; the trainer uses the same ones). SetModel also sets the
 * organ labels to the model's; SetOrganLabels may then choose a subset, and a label the model does not know is an
 * error. A given coarse label map wins over the model. Floating-point input with NaN or infinite voxels is refused in
 * network mode.
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

  /** The model whose coarse network makes the coarse map (when no coarse map is given). */
  void
  SetModel(AGCLModelObject * model);
  AGCLModelObject *
  GetModel() const
  {
    return m_Model;
  }
  /** Loads the model from a `*.agcl` file now (itk::ExceptionObject naming the file on failure). */
  void
  SetModelFileName(const std::string & fileName);
  itkGetStringMacro(ModelFileName);
  /** "cpu", "cuda" or "cuda:N" for the coarse network. */
  itkSetStringMacro(Device);
  itkGetStringMacro(Device);

  using CoarseImageType = Image<float, ImageDimension>;
  /** The input resampled to the model's coarse grid and window-normalised to 0..1. */
  static typename CoarseImageType::Pointer
  ResampleToCoarseGrid(const InputImageType * image, const agcl::ModelConfig & config);
  /** The coarse network's label map (organ label values) on the coarse grid. */
  static typename LabelImageType::Pointer
  ComputeCoarseLabelMap(const InputImageType * image, const AGCLModelObject * model, const std::string & device);
  /** The coarse network's result on the coarse grid: the label map (as ComputeCoarseLabelMap)
   *  and, per organ of the model, its attention seed: the organ's label value where its
   *  attention grows from, 0 elsewhere (its argmax region, and with the model's
   *  coarse.attention_probability p > 0 every voxel where its probability is >= p), and its
   *  softmax probability (0..1 in steps of 1/255; LabelFusionFilter's coarse vote; left empty
   *  when ComputeCoarse is asked for no probabilities: 4 bytes per organ and coarse voxel saved). */
  struct CoarseResult
  {
    typename LabelImageType::Pointer               labels;
    std::vector<typename LabelImageType::Pointer>  seeds;
    std::vector<typename CoarseImageType::Pointer> probabilities;
  };
  static CoarseResult
  ComputeCoarse(const InputImageType *  image,
                const AGCLModelObject * model,
                const std::string &     device,
                bool                    withProbabilities = true);
  /** Writes organ `organ`'s attention into `attention` (inside its buffered region, cropped to
   *  `within` of `reference`'s index space): the voxels of `reference`'s grid within `marginMM`
   *  of the organ's seed `seed` (any grid, e.g. the coarse one; resampled by nearest neighbour
   *  only over the seed's bounding box grown by the margin). Nothing is written when the seed
   *  is empty. */
  static void
  ComputeAttentionFromSeed(const LabelImageType *                      seed,
                           LabelType                                   organ,
                           const ImageBase<ImageDimension> *           reference,
                           const typename LabelImageType::RegionType & within,
                           double                                      marginMM,
                           LabelImageType *                            attention);
  /** `labels` resampled by nearest neighbour onto `reference`'s grid over `region`. */
  static typename LabelImageType::Pointer
  ResampleLabels(const LabelImageType *                      labels,
                 const ImageBase<ImageDimension> *           reference,
                 const typename LabelImageType::RegionType & region);

  /** Writes 1 into `attention` (inside its buffered region, which may be a part of the labels'
   *  region, e.g. a slab) wherever the Euclidean distance in mm to the nearest voxel of `organ`
   *  in `labels` is at most `marginMM`; other voxels are left as they are. `organBox` is the
   *  organ's index bounding box in `labels` (LabelBoundingBoxes). */
  static void
  ComputeAttentionMap(const LabelImageType *                      labels,
                      LabelType                                   organ,
                      const typename LabelImageType::RegionType & organBox,
                      double                                      marginMM,
                      LabelImageType *                            attention);

  /** The same two stages as tensor work in the agcl core (issue 17: agcl::ResampleNearest and
   *  agcl::GrowByMargin, on the CPU here): the same voxels as ComputeAttentionFromSeed and
   *  ComputeAttentionMap, which stay the reference of the tests. The organ's mask is read only
   *  inside `within` (a region of `labels`' buffer: e.g. a slab grown by the margin) and its
   *  region written only inside `attention`'s buffered region. They return the number of voxels
   *  set to 1 (0: nothing written). ComputeAttentionFromSeedTensor falls back to the ITK
   *  resampling when the seed's grid is rotated against the reference's (not the case of the
   *  coarse grid, which shares the input's direction). `writtenBox`, when given, receives a
   *  region of `attention` that holds every voxel written; `workspace`, when given, keeps the
   *  buffers between calls (one per thread). */
  static int64_t
  ComputeAttentionFromSeedTensor(const LabelImageType *                      seed,
                                 LabelType                                   organ,
                                 const ImageBase<ImageDimension> *           reference,
                                 const typename LabelImageType::RegionType & within,
                                 double                                      marginMM,
                                 LabelImageType *                            attention,
                                 typename LabelImageType::RegionType *       writtenBox = nullptr,
                                 agcl::MarginWorkspace *                     workspace = nullptr);
  static int64_t
  ComputeAttentionMapTensor(const LabelImageType *                      labels,
                            LabelType                                   organ,
                            const typename LabelImageType::RegionType & organBox,
                            const typename LabelImageType::RegionType & within,
                            double                                      marginMM,
                            LabelImageType *                            attention,
                            typename LabelImageType::RegionType *       writtenBox = nullptr,
                            agcl::MarginWorkspace *                     workspace = nullptr);

  itkSetMacro(MarginMM, double);
  itkGetConstMacro(MarginMM, double);
  /** On (default): the attention maps through the core's tensor functions (the *Tensor
   *  functions above); Off: through ITK's resampling and Maurer distance map (the reference).
   *  Both give the same maps (tested). */
  itkSetMacro(TensorStages, bool);
  itkGetConstMacro(TensorStages, bool);
  itkBooleanMacro(TensorStages);

  /** Output 0. */
  LabelImageType *
  GetCoarseLabelOutput();
  /** The attention map of the organ with label value `label`; itk::ExceptionObject if not an organ. */
  LabelImageType *
  GetAttentionMap(LabelType label);
  /** After Update() with the model's coarse network (not with a given coarse map): the network's
   *  probability of organ `label` on the coarse grid (for LabelFusionFilter's coarse vote);
   *  itk::ExceptionObject otherwise. */
  const CoarseImageType *
  GetCoarseProbabilityMap(LabelType label) const;

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
  std::vector<LabelType>            m_OrganLabels;
  double                            m_MarginMM{ 10.0 };
  bool                              m_TensorStages{ true };
  typename AGCLModelObject::Pointer m_Model;
  std::string                       m_ModelFileName;
  std::string                       m_Device{ "cpu" };
  std::map<LabelType, typename CoarseImageType::Pointer> m_CoarseProbability;
};

} // namespace itk

#ifndef ITK_MANUAL_INSTANTIATION
#  include "itkCoarseAttentionFilter.hxx"
#endif

#endif
