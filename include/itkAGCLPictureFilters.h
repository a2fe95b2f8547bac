/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkAGCLPictureFilters_h
#define itkAGCLPictureFilters_h

// The single filters of the pipeline on 2D pictures (issue 19), over the core's picture stages
// (agcl/PictureStages.h), for a 2D model (image.dimensions 2):
//   PictureCoarseAttentionFilter -> PictureQueryPatchSamplerFilter -> AGCLEncoderFilter
//   -> ASPPDecoderFilter -> PictureLabelFusionFilter
// gives what AGCLPictureSegmentationFilter gives in one call (tested). The network filters are the
// volumes' (they read and write TensorDataObjects of any patch channel count). A 2D model's lengths
// are pixels: a picture patch's metadata gives its first pixel as a continuous pixel index (x, y,
// 0) in `origin` and its pixel steps in `spacing`, both in pixels (not mm), axes (1, 0, 0, 0, 1, 0).

#include "agcl/AGCLModel.h"
#include "agcl/Device.h"
#include "agcl/PictureStages.h"
#include "itkAGCLModelObject.h"
#include "itkConvertTorchErrors.h"
#include "itkDefaultConvertPixelTraits.h"
#include "itkImage.h"
#include "itkImageRegionConstIterator.h"
#include "itkImageRegionIterator.h"
#include "itkImageToImageFilter.h"
#include "itkTensorDataObject.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace itk {
namespace agcl_picture_detail {

/** A picture's pixels [C, H, W] float32 (C = the pixel's component count), from the buffered region. */
template <typename TImage>
at::Tensor
PictureTensor(const TImage * image)
{
  using PixelType = typename TImage::PixelType;
  using Traits = DefaultConvertPixelTraits<PixelType>;
  const auto    region = image->GetBufferedRegion();
  const int64_t H = region.GetSize(1), W = region.GetSize(0);
  const int64_t C = image->GetNumberOfComponentsPerPixel();
  at::Tensor    pixels = at::empty({ H, W, C }, at::kFloat);
  float *       out = pixels.data_ptr<float>();
  for (ImageRegionConstIterator<TImage> it(image, region); !it.IsAtEnd(); ++it)
  {
    const PixelType value = it.Get();
    for (int64_t c = 0; c < C; ++c)
      *out++ = static_cast<float>(Traits::GetNthComponent(static_cast<int>(c), value));
  }
  return pixels.permute({ 2, 0, 1 }).contiguous();
}

/** Writes labels [H, W] (any integer tensor) into `output`'s requested region (allocated here). */
template <typename TLabelImage>
void
WriteLabels(TLabelImage * output, const at::Tensor & labels)
{
  output->SetBufferedRegion(output->GetRequestedRegion());
  output->Allocate();
  const at::Tensor values = labels.to(at::kCPU, at::kLong).contiguous();
  const int64_t *  value = values.data_ptr<int64_t>();
  for (ImageRegionIterator<TLabelImage> it(output, output->GetBufferedRegion()); !it.IsAtEnd(); ++it)
    it.Set(static_cast<typename TLabelImage::PixelType>(*value++));
}

/** A label image's non-zero pixels [H, W] bool. */
template <typename TLabelImage>
at::Tensor
MaskTensor(const TLabelImage * image)
{
  const auto region = image->GetBufferedRegion();
  at::Tensor mask =
    at::empty({ static_cast<int64_t>(region.GetSize(1)), static_cast<int64_t>(region.GetSize(0)) }, at::kBool);
  bool * out = mask.data_ptr<bool>();
  for (ImageRegionConstIterator<TLabelImage> it(image, region); !it.IsAtEnd(); ++it)
    *out++ = it.Get() != typename TLabelImage::PixelType{};
  return mask;
}

/** The model's configuration, after checking that it is a 2D model reading `channels` channels. */
inline const agcl::ModelConfig &
PictureConfig(const AGCLModelObject * model, const std::string & filter, int64_t channels = -1)
{
  if (model == nullptr)
    itkGenericExceptionMacro(<< filter << ": no model: call SetModel()");
  const agcl::ModelConfig & config = model->GetConfig();
  if (config.image_dimensions != 2)
    itkGenericExceptionMacro(<< filter << ": the model is for 3D volumes ('image.dimensions' "
                             << config.image_dimensions << "); the input is a 2D picture");
  if (channels >= 0 && channels != config.image_channels)
    itkGenericExceptionMacro(<< filter << ": the input has " << channels << " component(s) per pixel; the model reads "
                             << config.image_channels << " (its image.channels)");
  return config;
}

/** The organ index (0..O-1) of label value `label`, or -1. */
inline int64_t
OrganIndex(const agcl::ModelConfig & config, int64_t label)
{
  for (size_t o = 0; o < config.organs.size(); ++o)
    if (config.organs[o].label == label)
      return static_cast<int64_t>(o);
  return -1;
}

/** The attention maps given by label value as one tensor [O, H, W] bool in the model's organ order
 *  (an organ without a map attends nothing). itk::ExceptionObject for a label that is not an organ
 *  or a map of another size than `size`. */
template <typename TLabelImage>
at::Tensor
AttentionTensor(const std::map<int64_t, const TLabelImage *> & maps,
                const agcl::ModelConfig &                      config,
                const typename TLabelImage::SizeType &         size,
                const std::string &                            filter)
{
  at::Tensor attention = at::zeros(
    { static_cast<int64_t>(config.organs.size()), static_cast<int64_t>(size[1]), static_cast<int64_t>(size[0]) },
    at::kBool);
  for (const auto & [label, map] : maps)
  {
    const int64_t o = OrganIndex(config, label);
    if (o < 0)
      itkGenericExceptionMacro(<< filter << ": attention map of label " << label << ": not an organ of the model");
    if (map->GetBufferedRegion().GetSize() != size)
      itkGenericExceptionMacro(<< filter << ": attention map of label " << label << ": "
                               << map->GetBufferedRegion().GetSize() << " pixels; the picture has " << size);
    attention[o] = MaskTensor(map);
  }
  return attention;
}

} // namespace agcl_picture_detail

/** \class PictureCoarseAttentionFilter
 * \brief The coarse stage on a 2D picture: output 0 the coarse network's label map, outputs
 * 1..O each organ's attention map (1 inside: its seed grown by the model's margin_mm, in pixels),
 * in the model's organ order (GetAttentionMap(label)); GetCoarseProbabilities() the network's
 * probabilities on the coarse grid, for the fusion's coarse vote (agcl::CoarsePicture).
 * \ingroup AGCLSegmentation */
template <typename TInputImage, typename TLabelImage = Image<unsigned char, 2>>
class ITK_TEMPLATE_EXPORT PictureCoarseAttentionFilter : public ImageToImageFilter<TInputImage, TLabelImage>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(PictureCoarseAttentionFilter);
  using Self = PictureCoarseAttentionFilter;
  using Superclass = ImageToImageFilter<TInputImage, TLabelImage>;
  using Pointer = SmartPointer<Self>;
  itkNewMacro(Self);
  itkTypeMacro(PictureCoarseAttentionFilter, ImageToImageFilter);
  using LabelImageType = TLabelImage;
  static_assert(TInputImage::ImageDimension == 2 && TLabelImage::ImageDimension == 2, "2D pictures");

  /** The model (a 2D model); one attention output per organ of it. */
  void
  SetModel(AGCLModelObject * model)
  {
    m_Model = model;
    const auto organs = model ? model->GetConfig().organs.size() : 0;
    this->SetNumberOfRequiredOutputs(1 + organs);
    for (size_t o = 0; o < organs; ++o)
      if (1 + o >= this->GetNumberOfIndexedOutputs() || this->ProcessObject::GetOutput(1 + o) == nullptr)
        this->SetNthOutput(1 + o, this->MakeOutput(1 + o));
    this->Modified();
  }
  itkSetStringMacro(Device);
  itkGetStringMacro(Device);

  LabelImageType *
  GetAttentionMap(int64_t label)
  {
    const int64_t o = m_Model ? agcl_picture_detail::OrganIndex(m_Model->GetConfig(), label) : -1;
    if (o < 0)
      itkExceptionMacro(<< "label " << label << " is not an organ of the model");
    return static_cast<LabelImageType *>(this->ProcessObject::GetOutput(1 + o));
  }
  /** [O, 1, h, w] float 0..1 on the coarse grid (after Update). */
  const at::Tensor &
  GetCoarseProbabilities() const
  {
    return m_Probabilities;
  }

protected:
  PictureCoarseAttentionFilter() = default;
  ~PictureCoarseAttentionFilter() override = default;
  void
  GenerateInputRequestedRegion() override
  {
    Superclass::GenerateInputRequestedRegion();
    if (auto * input = const_cast<TInputImage *>(this->GetInput()))
      input->SetRequestedRegionToLargestPossibleRegion();
  }
  void
  EnlargeOutputRequestedRegion(DataObject * output) override
  {
    Superclass::EnlargeOutputRequestedRegion(output);
    output->SetRequestedRegionToLargestPossibleRegion();
  }
  void
  GenerateData() override
  {
    const TInputImage *       input = this->GetInput();
    const agcl::ModelConfig & config = agcl_picture_detail::PictureConfig(
      m_Model, "PictureCoarseAttentionFilter", input->GetNumberOfComponentsPerPixel());
    agcl::Picture picture;
    picture.pixels = agcl_picture_detail::PictureTensor(input);
    const agcl::PictureCoarse coarse = ConvertTorchErrors("PictureCoarseAttentionFilter", [&] {
      return agcl::CoarsePicture(m_Model->GetModel(), picture, agcl::ParseDevice(m_Device));
    });
    agcl_picture_detail::WriteLabels(this->GetOutput(), agcl::LabelValuesOfClasses(coarse.classes, config));
    for (size_t o = 0; o < config.organs.size(); ++o)
      agcl_picture_detail::WriteLabels(static_cast<LabelImageType *>(this->ProcessObject::GetOutput(1 + o)),
                                       coarse.attention[static_cast<int64_t>(o)]);
    m_Probabilities = coarse.probabilities;
  }

private:
  typename AGCLModelObject::Pointer m_Model;
  std::string                       m_Device{ "cpu" };
  at::Tensor                        m_Probabilities;
};

/** \class PictureQueryPatchSamplerFilter
 * \brief Query patches of a 2D picture -> TensorDataObject "image" [N, C + 1, P, P] (the model's
 * normalisation of the C channels, then the organ's attention), and with a label map in training
 * mode "label" uint8 [N, 1, P, P] (1 the patch's organ, 0 not, 255 ignored: void 255 or outside).
 * Inference: tiles covering each organ's attention box; training: PatchesPerOrgan centres drawn
 * among its attention pixels (agcl::PicturePatchFrames). Metadata: organ label, modality, first
 * pixel (index, and origin/spacing in pixels, see above).
 * \ingroup AGCLSegmentation */
template <typename TInputImage, typename TLabelImage = Image<unsigned char, 2>>
class ITK_TEMPLATE_EXPORT PictureQueryPatchSamplerFilter : public ProcessObject
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(PictureQueryPatchSamplerFilter);
  using Self = PictureQueryPatchSamplerFilter;
  using Superclass = ProcessObject;
  using Pointer = SmartPointer<Self>;
  itkNewMacro(Self);
  itkTypeMacro(PictureQueryPatchSamplerFilter, ProcessObject);
  using LabelImageType = TLabelImage;
  static_assert(TInputImage::ImageDimension == 2 && TLabelImage::ImageDimension == 2, "2D pictures");

  void
  SetInput(const TInputImage * image)
  {
    this->SetNthInput(0, const_cast<TInputImage *>(image));
  }
  /** The attention map (non-zero = attended) of the class with label value `label`; nullptr
   *  removes it. */
  void
  SetAttentionMap(int64_t label, const LabelImageType * attention)
  {
    const std::string name = "Attention" + std::to_string(label);
    if (attention == nullptr) // as ITK's SetInput(nullptr): the label's map is removed
    {
      m_Attention.erase(label);
      this->RemoveInput(name);
    }
    else
    {
      this->AddOptionalInputName(name);
      this->ProcessObject::SetInput(name, const_cast<LabelImageType *>(attention));
      m_Attention[label] = attention;
    }
    this->Modified();
  }
  /** Training: the label map (label values; 255 void). */
  void
  SetLabelMap(const LabelImageType * labels)
  {
    this->ProcessObject::SetInput("LabelMap", const_cast<LabelImageType *>(labels));
  }
  void
  SetModel(AGCLModelObject * model)
  {
    m_Model = model;
    this->Modified();
  }
  TensorDataObject *
  GetOutput()
  {
    return static_cast<TensorDataObject *>(this->ProcessObject::GetOutput(0));
  }
  itkSetMacro(Training, bool);
  itkGetConstMacro(Training, bool);
  itkSetMacro(PatchesPerOrgan, unsigned int);
  itkGetConstMacro(PatchesPerOrgan, unsigned int);
  itkSetMacro(Seed, uint64_t);
  itkGetConstMacro(Seed, uint64_t);
  itkSetMacro(Overlap, double);
  itkGetConstMacro(Overlap, double);
  itkSetMacro(Modality, int);
  itkGetConstMacro(Modality, int);

protected:
  PictureQueryPatchSamplerFilter()
  {
    this->SetNumberOfRequiredInputs(1);
    this->AddOptionalInputName("LabelMap");
    this->SetNumberOfRequiredOutputs(1);
    this->SetNthOutput(0, this->MakeOutput(0));
  }
  ~PictureQueryPatchSamplerFilter() override = default;
  using Superclass::MakeOutput;
  DataObjectPointer
  MakeOutput(DataObjectPointerArraySizeType) override
  {
    return TensorDataObject::New().GetPointer();
  }
  void
  GenerateData() override
  {
    const auto *              input = dynamic_cast<const TInputImage *>(this->ProcessObject::GetInput(0));
    const agcl::ModelConfig & config = agcl_picture_detail::PictureConfig(
      m_Model, "PictureQueryPatchSamplerFilter", input->GetNumberOfComponentsPerPixel());
    const auto       size = input->GetBufferedRegion().GetSize();
    const int64_t    H = size[1], W = size[0];
    const at::Tensor attention =
      agcl_picture_detail::AttentionTensor(m_Attention, config, size, "PictureQueryPatchSamplerFilter");
    const auto * labels = dynamic_cast<const LabelImageType *>(this->ProcessObject::GetInput("LabelMap"));
    if (m_Training && m_PatchesPerOrgan == 0)
      itkExceptionMacro(<< "training mode with PatchesPerOrgan 0");
    TensorDataObject * output = this->GetOutput();
    output->Initialize();
    ConvertTorchErrors("PictureQueryPatchSamplerFilter", [&] {
      agcl::Picture picture;
      picture.pixels = agcl_picture_detail::PictureTensor(input);
      const auto frames = agcl::PicturePatchFrames(
        attention, picture.spacing, config, m_Training ? m_PatchesPerOrgan : 0, m_Seed, m_Overlap);
      output->SetTensor("image", agcl::SamplePicturePatches(picture, attention, frames, config));
      const int64_t P = config.patch_size;
      if (m_Training && labels != nullptr)
      {
        if (labels->GetBufferedRegion().GetSize() != size)
          itkExceptionMacro(<< "label map: " << labels->GetBufferedRegion().GetSize() << " pixels; the picture has "
                            << size);
        at::Tensor values = at::empty({ H, W }, at::kByte);
        std::copy_n(labels->GetBufferPointer(), H * W, values.data_ptr<uint8_t>());
        std::vector<int64_t> organLabels;
        for (const auto & organ : config.organs)
          organLabels.push_back(organ.label);
        const at::Tensor masks = agcl::SamplePictureMasks(values, frames, P, organLabels, 255);
        output->SetTensor("label", masks.masked_fill(masks.lt(0), 255).to(at::kByte).unsqueeze(1));
      }
      TensorDataObject::MetadataType metadata;
      for (const agcl::PatchFrame & f : frames)
      {
        TensorItemMetadata m;
        m.organ = static_cast<int>(config.organs[static_cast<size_t>(f.organ)].label);
        m.modality = m_Modality;
        m.index = { static_cast<int64_t>(std::floor(f.first[0] + 0.5)),
                    static_cast<int64_t>(std::floor(f.first[1] + 0.5)),
                    0 };
        m.origin = { f.first[0], f.first[1], 0.0 };
        m.spacing = { f.column[0], f.row[1] };
        m.axes = { 1, 0, 0, 0, 1, 0 };
        metadata.push_back(m);
      }
      output->SetMetadata(metadata);
    });
  }

private:
  std::map<int64_t, const LabelImageType *> m_Attention;
  typename AGCLModelObject::Pointer         m_Model;
  bool                                      m_Training{ false };
  unsigned int                              m_PatchesPerOrgan{ 16 };
  uint64_t                                  m_Seed{ 1 };
  double                                    m_Overlap{ 0.25 };
  int                                       m_Modality{ 0 };
};

/** \class PictureLabelFusionFilter
 * \brief The label map of a 2D picture from its patches' organ probabilities (TensorDataObject
 * "probability" [N, 1, P, P] with the picture sampler's metadata): agcl::FusePatchScores over each
 * organ's attention box (Gaussian pixel weights when GaussianWeighting; the model's coarse_weight
 * vote when coarse probabilities are given), then agcl::DecideLabels (the model's thresholds,
 * inside each organ's attention). Input 0: a reference image with the picture's grid (e.g. the
 * coarse label map), whose geometry the output takes.
 * \ingroup AGCLSegmentation */
template <typename TLabelImage = Image<unsigned char, 2>>
class ITK_TEMPLATE_EXPORT PictureLabelFusionFilter : public ImageToImageFilter<TLabelImage, TLabelImage>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(PictureLabelFusionFilter);
  using Self = PictureLabelFusionFilter;
  using Superclass = ImageToImageFilter<TLabelImage, TLabelImage>;
  using Pointer = SmartPointer<Self>;
  itkNewMacro(Self);
  itkTypeMacro(PictureLabelFusionFilter, ImageToImageFilter);
  using LabelImageType = TLabelImage;
  static_assert(TLabelImage::ImageDimension == 2, "2D pictures");

  void
  SetReferenceImage(const LabelImageType * reference)
  {
    this->SetInput(reference);
  }
  void
  SetPatches(const TensorDataObject * patches)
  {
    this->ProcessObject::SetInput("Patches", const_cast<TensorDataObject *>(patches));
  }
  /** The attention map (non-zero = attended) of the class with label value `label`; nullptr
   *  removes it. */
  void
  SetAttentionMap(int64_t label, const LabelImageType * attention)
  {
    const std::string name = "Attention" + std::to_string(label);
    if (attention == nullptr) // as ITK's SetInput(nullptr): the label's map is removed
    {
      m_Attention.erase(label);
      this->RemoveInput(name);
    }
    else
    {
      this->AddOptionalInputName(name);
      this->ProcessObject::SetInput(name, const_cast<LabelImageType *>(attention));
      m_Attention[label] = attention;
    }
    this->Modified();
  }
  /** The coarse network's probabilities [O, 1, h, w] (PictureCoarseAttentionFilter) for the vote. */
  void
  SetCoarseProbabilities(const at::Tensor & probabilities)
  {
    m_Probabilities = probabilities;
    this->Modified();
  }
  void
  SetModel(AGCLModelObject * model)
  {
    m_Model = model;
    this->Modified();
  }
  itkSetMacro(GaussianWeighting, bool);
  itkGetConstMacro(GaussianWeighting, bool);
  itkBooleanMacro(GaussianWeighting);

protected:
  PictureLabelFusionFilter() { this->AddRequiredInputName("Patches"); }
  ~PictureLabelFusionFilter() override = default;
  void
  GenerateInputRequestedRegion() override
  {
    Superclass::GenerateInputRequestedRegion();
    for (auto & [label, map] : m_Attention)
      const_cast<LabelImageType *>(map)->SetRequestedRegionToLargestPossibleRegion();
  }
  void
  EnlargeOutputRequestedRegion(DataObject * output) override
  {
    Superclass::EnlargeOutputRequestedRegion(output);
    output->SetRequestedRegionToLargestPossibleRegion();
  }
  void
  GenerateData() override
  {
    const agcl::ModelConfig & config = agcl_picture_detail::PictureConfig(m_Model, "PictureLabelFusionFilter");
    const auto *     patches = dynamic_cast<const TensorDataObject *>(this->ProcessObject::GetInput("Patches"));
    const auto       size = this->GetInput()->GetLargestPossibleRegion().GetSize();
    const at::Tensor attention =
      agcl_picture_detail::AttentionTensor(m_Attention, config, size, "PictureLabelFusionFilter");
    std::vector<agcl::PatchFrame> frames;
    for (const TensorItemMetadata & m : patches->GetMetadata())
    {
      agcl::PatchFrame f;
      f.first = { m.origin[0], m.origin[1], 0.0 };
      f.column = { m.spacing[0], 0.0, 0.0 };
      f.row = { 0.0, m.spacing[1], 0.0 };
      f.organ = agcl_picture_detail::OrganIndex(config, m.organ);
      f.planar = true;
      if (f.organ < 0)
        itkExceptionMacro(<< "a patch of label " << m.organ << ": not an organ of the model");
      frames.push_back(f);
    }
    const at::Tensor labels = ConvertTorchErrors("PictureLabelFusionFilter", [&] {
      const at::Tensor probabilities = frames.empty()
                                         ? at::zeros({ 0, 1, config.patch_size, config.patch_size }, at::kFloat)
                                         : patches->GetTensor("probability").to(at::kCPU, at::kFloat);
      return agcl::LabelValuesOfClasses(
        agcl::FusePicture(probabilities, frames, attention, m_Probabilities, { 1.0, 1.0 }, config, m_GaussianWeighting),
        config);
    });
    agcl_picture_detail::WriteLabels(this->GetOutput(), labels);
  }

private:
  std::map<int64_t, const LabelImageType *> m_Attention;
  typename AGCLModelObject::Pointer         m_Model;
  at::Tensor                                m_Probabilities;
  bool                                      m_GaussianWeighting{ false };
};

} // namespace itk

#endif
