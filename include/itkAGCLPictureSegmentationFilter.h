/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkAGCLPictureSegmentationFilter_h
#define itkAGCLPictureSegmentationFilter_h

#include "agcl/Device.h"
#include "agcl/PictureStages.h"
#include "itkAGCLModelObject.h"
#include "itkAGCLPictureFilters.h"
#include "itkConvertTorchErrors.h"
#include "itkDefaultConvertPixelTraits.h"
#include "itkImage.h"
#include "itkImageRegionConstIterator.h"
#include "itkImageRegionIterator.h"
#include "itkImageToImageFilter.h"

#include <ATen/ATen.h>

#include <cmath>
#include <string>

namespace itk {

/** \class AGCLPictureSegmentationFilter
 * \brief The whole AGCL pipeline on a 2D picture (issue 19: the paper's "2D for natural image",
 * PASCAL VOC), for a 2D model (image.dimensions 2): the one-call filter of pictures, as
 * AGCLSegmentationFilter is of volumes.
 *
 * Input: a 2D image with scalar or multi-component pixels (itk::RGBPixel, itk::RGBAPixel,
 * itk::Vector, itk::VectorImage, ...) whose component count is the model's image.channels (3 for
 * RGB). Output 0: the label map (the model's label values, 0 background), output 1
 * (GetCoarseLabelMapOutput): the coarse network's label map; both with the input's geometry.
 * The work is the core's picture stages (agcl::SegmentPicture, agcl/PictureStages.h): the picture
 * as a one-slice volume to the planar coarse network, each class's attention grown in the plane,
 * axis-aligned query patches with C + 1 channels, the 3D fusion and decision. The model's lengths
 * (coarse spacing, patch spacing, margin) are pixels: the input's spacing is not used (a
 * photograph's resolution tag says nothing about the scene), only copied to the outputs.
 *
 * Errors (itk::ExceptionObject): no model; a model for 3D volumes; a pixel with another component
 * count than the model's channels; a value that is not finite; a bad device.
 *
 * The single filters of pictures (itkAGCLPictureFilters.h: PictureCoarseAttentionFilter,
 * PictureQueryPatchSamplerFilter, PictureLabelFusionFilter, with the volumes' network filters)
 * give the same labels step by step (tested).
 * \ingroup AGCLSegmentation
 */
template <typename TInputImage, typename TLabelImage = Image<unsigned char, 2>>
class ITK_TEMPLATE_EXPORT AGCLPictureSegmentationFilter : public ImageToImageFilter<TInputImage, TLabelImage>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(AGCLPictureSegmentationFilter);
  using Self = AGCLPictureSegmentationFilter;
  using Superclass = ImageToImageFilter<TInputImage, TLabelImage>;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkNewMacro(Self);
  itkTypeMacro(AGCLPictureSegmentationFilter, ImageToImageFilter);

  using InputImageType = TInputImage;
  using LabelImageType = TLabelImage;
  static constexpr unsigned int ImageDimension = TInputImage::ImageDimension;
  static_assert(ImageDimension == 2, "AGCLPictureSegmentationFilter works on 2D pictures");
  static_assert(TLabelImage::ImageDimension == 2, "a 2D label image");

  /** The model (a 2D model). */
  void
  SetModel(AGCLModelObject * model)
  {
    m_Model = model;
    this->Modified();
  }
  AGCLModelObject *
  GetModel() const
  {
    return m_Model;
  }
  /** Loads the model from a `*.agcl` file now (itk::ExceptionObject naming the file on failure). */
  void
  SetModelFileName(const std::string & fileName)
  {
    auto model = AGCLModelObject::New();
    model->Load(fileName);
    m_ModelFileName = fileName;
    this->SetModel(model);
  }
  itkGetStringMacro(ModelFileName);
  /** "cpu", "cuda" or "cuda:N". */
  itkSetStringMacro(Device);
  itkGetStringMacro(Device);
  /** Query patches per network batch. */
  itkSetMacro(BatchSize, unsigned int);
  itkGetConstMacro(BatchSize, unsigned int);
  /** Overlap of the inference tiles (0 <= overlap < 1). */
  itkSetMacro(Overlap, double);
  itkGetConstMacro(Overlap, double);
  /** Gaussian pixel weights in the fusion (off by default, as AGCLSegmentationFilter). */
  itkSetMacro(GaussianWeighting, bool);
  itkGetConstMacro(GaussianWeighting, bool);
  itkBooleanMacro(GaussianWeighting);

  /** Output 1: the coarse network's label map. */
  LabelImageType *
  GetCoarseLabelMapOutput()
  {
    return static_cast<LabelImageType *>(this->ProcessObject::GetOutput(1));
  }
  /** The number of query patches of the last Update. */
  itkGetConstMacro(NumberOfPatches, int64_t);

  /** The picture's pixels as the picture stages read them: [C, H, W] float32 (C = the pixel's
   *  component count), from the image's buffered region. */
  static at::Tensor
  PictureTensor(const InputImageType * image)
  {
    return agcl_picture_detail::PictureTensor(image);
  }

protected:
  AGCLPictureSegmentationFilter()
  {
    this->SetNumberOfRequiredOutputs(2);
    this->SetNthOutput(1, this->MakeOutput(1));
  }
  ~AGCLPictureSegmentationFilter() override = default;

  void
  VerifyPreconditions() ITKv5_CONST override
  {
    Superclass::VerifyPreconditions();
    if (m_Model.IsNull())
      itkExceptionMacro(<< "no model: call SetModelFileName(\"model.agcl\") or SetModel()");
    if (m_BatchSize == 0)
      itkExceptionMacro(<< "BatchSize 0: expected at least 1 patch per batch");
    if (!(m_Overlap >= 0.0 && m_Overlap < 1.0))
      itkExceptionMacro(<< "Overlap " << m_Overlap << ": expected 0 <= overlap < 1");
    ConvertTorchErrors("Device", [this] { agcl::ParseDevice(m_Device); });
    const agcl::ModelConfig & config = m_Model->GetConfig();
    if (config.image_dimensions != 2)
      itkExceptionMacro(<< "the model (" << (m_ModelFileName.empty() ? "set in memory" : m_ModelFileName)
                        << ") is for 3D volumes ('image.dimensions' " << config.image_dimensions
                        << "); the input is a 2D picture: use AGCLSegmentationFilter for volumes");
  }

  // After the input's information is up to date: a VectorImage from a reader knows its component
  // count only then.
  void
  VerifyInputInformation() ITKv5_CONST override
  {
    Superclass::VerifyInputInformation();
    const unsigned int components = this->GetInput()->GetNumberOfComponentsPerPixel();
    if (static_cast<int64_t>(components) != m_Model->GetConfig().image_channels)
      itkExceptionMacro(<< "the input has " << components << " component(s) per pixel; the model reads "
                        << m_Model->GetConfig().image_channels << " (its image.channels)");
  }

  void
  GenerateInputRequestedRegion() override
  {
    Superclass::GenerateInputRequestedRegion();
    auto * input = const_cast<InputImageType *>(this->GetInput());
    if (input)
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
    const InputImageType * input = this->GetInput();
    const at::Tensor       pixels = PictureTensor(input);
    if (!at::isfinite(pixels).all().item<bool>())
      itkExceptionMacro(<< "the input has values that are not finite (NaN or infinite)");
    agcl::Picture picture;
    picture.pixels = pixels; // spacing 1 x 1: a 2D model's lengths are pixels
    const agcl::PictureSegmentation result = ConvertTorchErrors("AGCLPictureSegmentationFilter", [&] {
      return agcl::SegmentPicture(m_Model->GetModel(),
                                  picture,
                                  agcl::ParseDevice(m_Device),
                                  m_Overlap,
                                  static_cast<int64_t>(m_BatchSize),
                                  m_GaussianWeighting);
    });
    agcl_picture_detail::WriteLabels(this->GetOutput(), result.labels);
    agcl_picture_detail::WriteLabels(this->GetCoarseLabelMapOutput(), result.coarse);
    m_NumberOfPatches = result.patches;
  }

  void
  PrintSelf(std::ostream & os, Indent indent) const override
  {
    Superclass::PrintSelf(os, indent);
    os << indent << "ModelFileName: " << m_ModelFileName << std::endl;
    os << indent << "Model: " << (m_Model.IsNull() ? "none" : "set") << std::endl;
    os << indent << "Device: " << m_Device << std::endl;
    os << indent << "BatchSize: " << m_BatchSize << std::endl;
    os << indent << "Overlap: " << m_Overlap << std::endl;
    os << indent << "GaussianWeighting: " << m_GaussianWeighting << std::endl;
  }

private:
  typename AGCLModelObject::Pointer m_Model;
  std::string                       m_ModelFileName;
  std::string                       m_Device{ "cpu" };
  unsigned int                      m_BatchSize{ 32 };
  double                            m_Overlap{ 0.25 };
  bool                              m_GaussianWeighting{ false };
  int64_t                           m_NumberOfPatches{ 0 };
};

} // namespace itk

#endif
