/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// The facade's 2D path (issue 19): the one-call SegmentPicture and the single filters of pictures
// (itk::PictureCoarseAttentionFilter, PictureQueryPatchSamplerFilter, PictureLabelFusionFilter)
// over numpy arrays. Pictures become itk::VectorImage<float, 2> (numpy's (H, W, C) order is the
// VectorImage's pixel-interleaved buffer), maps itk::Image<unsigned char, 2>; spacing 1 (a 2D
// model's lengths are pixels).
#include "AGCLPython.h"
#include "AGCLPythonInternal.h"

#include "agcl/Device.h"
#include "agcl/PictureStages.h"
#include "agcl/Threading.h"
#include "itkAGCLModelObject.h"
#include "itkAGCLPictureFilters.h"
#include "itkVectorImage.h"

#include <ATen/ATen.h>

#include <cstring>
#include <map>
#include <memory>

namespace agcl::python {
using namespace detail;

namespace {

using PictureImage = itk::VectorImage<float, 2>;
using PictureLabelImage = itk::Image<unsigned char, 2>;

/** A float32 (H, W, C) buffer as a tensor [H, W, C] (copied; finite values only). */
at::Tensor
PicturePixels(const std::vector<int64_t> & shape, PyObject * buffer, const std::string & what)
{
  if (shape.size() != 3 || shape[0] < 1 || shape[1] < 1 || shape[2] < 1)
    throw std::invalid_argument(what + ": expected a picture of shape (H, W, C)");
  at::Tensor pixels = TensorFromBuffer(what, "float32", shape, buffer);
  if (!at::isfinite(pixels).all().item<bool>())
    throw std::invalid_argument(what + ": the picture has values that are not finite (NaN or infinite)");
  return pixels;
}

/** A float32 (H, W, C) buffer as a VectorImage (copied; finite values only). */
PictureImage::Pointer
PictureOf(const std::vector<int64_t> & shape, PyObject * buffer, const std::string & what)
{
  const at::Tensor         pixels = PicturePixels(shape, buffer, what);
  auto                     image = PictureImage::New();
  PictureImage::RegionType region;
  PictureImage::SizeType   size{ { static_cast<itk::SizeValueType>(shape[1]),
                                   static_cast<itk::SizeValueType>(shape[0]) } };
  region.SetSize(size);
  image->SetRegions(region);
  image->SetNumberOfComponentsPerPixel(static_cast<unsigned int>(shape[2]));
  image->Allocate();
  std::memcpy(image->GetBufferPointer(), pixels.data_ptr<float>(), static_cast<size_t>(pixels.numel()) * sizeof(float));
  return image;
}

/** A uint8 (H, W) buffer as a label image (copied). */
PictureLabelImage::Pointer
LabelMapOf(const std::vector<int64_t> & shape, PyObject * buffer, const std::string & what)
{
  if (shape.size() != 2 || shape[0] < 1 || shape[1] < 1)
    throw std::invalid_argument(what + ": expected a map of shape (H, W)");
  const at::Tensor              values = TensorFromBuffer(what, "uint8", shape, buffer);
  auto                          image = PictureLabelImage::New();
  PictureLabelImage::RegionType region;
  region.SetSize({ { static_cast<itk::SizeValueType>(shape[1]), static_cast<itk::SizeValueType>(shape[0]) } });
  image->SetRegions(region);
  image->Allocate();
  std::memcpy(image->GetBufferPointer(), values.data_ptr<uint8_t>(), static_cast<size_t>(values.numel()));
  return image;
}

/** A label image's pixels as a new uint8 tensor [H, W]. */
at::Tensor
TensorOfLabels(const PictureLabelImage * image)
{
  const auto size = image->GetBufferedRegion().GetSize();
  at::Tensor out = at::empty({ static_cast<int64_t>(size[1]), static_cast<int64_t>(size[0]) }, at::kByte);
  std::memcpy(out.data_ptr<uint8_t>(), image->GetBufferPointer(), static_cast<size_t>(out.numel()));
  return out;
}

itk::AGCLModelObject *
ModelObjectOf(const Model & model)
{
  return static_cast<itk::AGCLModelObject *>(model.GetITKModel());
}

/** SetModel of a picture facade whose Impl has `filter` and `model` (the model kept alive). */
template <typename TImpl>
void
SetModelOf(TImpl & impl, const Model & model)
{
  impl.model = model;
  impl.filter->SetModel(ModelObjectOf(model));
}

/** SetAttentionMap of a picture facade whose Impl has `filter` and `attention` (the maps kept alive). */
template <typename TImpl>
void
SetPictureAttentionMapOf(TImpl & impl, int label, const std::vector<int64_t> & shape, PyObject * buffer)
{
  const unsigned char value = OrganLabel(label, "SetAttentionMap");
  auto                map = LabelMapOf(shape, buffer, "attention map of label " + std::to_string(label));
  impl.attention[label] = map;
  impl.filter->SetAttentionMap(value, map);
}

const at::Tensor &
ResultOf(const at::Tensor & tensor, const std::string & what)
{
  if (!tensor.defined())
    throw std::invalid_argument(what + ": no output yet (call Update)");
  return tensor;
}

} // namespace

// --------------------------------------------------------------------------- SegmentPicture
TensorView
SegmentPicture(const Model & model, const std::vector<int64_t> & shape, PyObject * buffer, const std::string & device)
{
  agcl::Picture picture;
  picture.pixels = PicturePixels(shape, buffer, "segment_picture").permute({ 2, 0, 1 }).contiguous();
  auto &     networks = ModelObjectOf(model)->GetModel();
  at::Tensor labels;
  {
    const ReleasedGIL unlocked;
    labels = agcl::SegmentPicture(networks, picture, agcl::ParseDevice(device)).labels;
  }
  return TensorView::FromTensor(&labels);
}

// ------------------------------------------------------------- PictureCoarseAttentionFilter
struct PictureCoarseAttentionFilter::Impl
{
  using Filter = itk::PictureCoarseAttentionFilter<PictureImage, PictureLabelImage>;
  Filter::Pointer           filter = Filter::New();
  PictureImage::Pointer     input;
  Model                     model;
  at::Tensor                coarse, probabilities;
  std::map<int, at::Tensor> attention; // by label: the last Update's
};

PictureCoarseAttentionFilter::PictureCoarseAttentionFilter()
  : m_Impl(std::make_unique<Impl>())
{
  agcl::ConfigureThreads();
}
PictureCoarseAttentionFilter::~PictureCoarseAttentionFilter() = default;

void
PictureCoarseAttentionFilter::SetInput(const std::vector<int64_t> & shape, PyObject * buffer)
{
  m_Impl->input = PictureOf(shape, buffer, "PictureCoarseAttentionFilter input");
  m_Impl->filter->SetInput(m_Impl->input);
}
void
PictureCoarseAttentionFilter::SetModel(const Model & model)
{
  SetModelOf(*m_Impl, model);
}
AGCL_PYTHON_DEVICE(PictureCoarseAttentionFilter)

void
PictureCoarseAttentionFilter::Update()
{
  if (!m_Impl->input)
    throw std::invalid_argument("PictureCoarseAttentionFilter: no input picture (SetInput)");
  CallbackError none;
  Impl &        impl = *m_Impl;
  impl.coarse = at::Tensor();
  impl.probabilities = at::Tensor();
  impl.attention.clear();
  RunWithoutGIL(
    [&impl] {
      impl.filter->Update();
      impl.coarse = TensorOfLabels(impl.filter->GetOutput());
      for (const auto & organ : ModelObjectOf(impl.model)->GetConfig().organs)
        impl.attention[static_cast<int>(organ.label)] =
          TensorOfLabels(impl.filter->GetAttentionMap(static_cast<int64_t>(organ.label)));
      impl.probabilities = impl.filter->GetCoarseProbabilities().to(at::kCPU).contiguous().clone();
    },
    none);
}
TensorView
PictureCoarseAttentionFilter::GetCoarseLabelOutput() const
{
  return TensorView::FromTensor(&ResultOf(m_Impl->coarse, "PictureCoarseAttentionFilter"));
}
TensorView
PictureCoarseAttentionFilter::GetAttentionMap(int label) const
{
  ResultOf(m_Impl->coarse, "PictureCoarseAttentionFilter");
  const auto found = m_Impl->attention.find(label);
  if (found == m_Impl->attention.end())
    throw std::invalid_argument("GetAttentionMap: label " + std::to_string(label) + " is not an organ of the model");
  return TensorView::FromTensor(&found->second);
}
TensorView
PictureCoarseAttentionFilter::GetCoarseProbabilities() const
{
  return TensorView::FromTensor(&ResultOf(m_Impl->probabilities, "PictureCoarseAttentionFilter"));
}

// ----------------------------------------------------------- PictureQueryPatchSamplerFilter
struct PictureQueryPatchSamplerFilter::Impl
{
  using Filter = itk::PictureQueryPatchSamplerFilter<PictureImage, PictureLabelImage>;
  Filter::Pointer                           filter = Filter::New();
  PictureImage::Pointer                     input;
  PictureLabelImage::Pointer                labels;
  std::map<int, PictureLabelImage::Pointer> attention; // kept alive
  Model                                     model;
};

PictureQueryPatchSamplerFilter::PictureQueryPatchSamplerFilter()
  : m_Impl(std::make_unique<Impl>())
{
  agcl::ConfigureThreads();
}
PictureQueryPatchSamplerFilter::~PictureQueryPatchSamplerFilter() = default;

void
PictureQueryPatchSamplerFilter::SetInput(const std::vector<int64_t> & shape, PyObject * buffer)
{
  m_Impl->input = PictureOf(shape, buffer, "PictureQueryPatchSamplerFilter input");
  m_Impl->filter->SetInput(m_Impl->input);
}
void
PictureQueryPatchSamplerFilter::SetAttentionMap(int label, const std::vector<int64_t> & shape, PyObject * buffer)
{
  SetPictureAttentionMapOf(*m_Impl, label, shape, buffer);
}
void
PictureQueryPatchSamplerFilter::SetLabelMap(const std::vector<int64_t> & shape, PyObject * buffer)
{
  m_Impl->labels = LabelMapOf(shape, buffer, "label map");
  m_Impl->filter->SetLabelMap(m_Impl->labels);
}
void
PictureQueryPatchSamplerFilter::SetModel(const Model & model)
{
  SetModelOf(*m_Impl, model);
}
AGCL_PYTHON_PROPERTY(PictureQueryPatchSamplerFilter, Training, bool)
AGCL_PYTHON_PROPERTY(PictureQueryPatchSamplerFilter, PatchesPerOrgan, unsigned int)
AGCL_PYTHON_PROPERTY(PictureQueryPatchSamplerFilter, Seed, uint64_t)
AGCL_PYTHON_PROPERTY(PictureQueryPatchSamplerFilter, Overlap, double)
AGCL_PYTHON_PROPERTY(PictureQueryPatchSamplerFilter, Modality, int)

void
PictureQueryPatchSamplerFilter::Update()
{
  if (!m_Impl->input)
    throw std::invalid_argument("PictureQueryPatchSamplerFilter: no input picture (SetInput)");
  CallbackError none;
  auto &        filter = m_Impl->filter;
  RunWithoutGIL([&filter] { filter->Update(); }, none);
}
TensorData
PictureQueryPatchSamplerFilter::GetOutput() const
{
  return TensorData::FromITK(m_Impl->filter->GetOutput());
}

// ----------------------------------------------------------------- PictureLabelFusionFilter
struct PictureLabelFusionFilter::Impl
{
  using Filter = itk::PictureLabelFusionFilter<PictureLabelImage>;
  Filter::Pointer                           filter = Filter::New();
  PictureLabelImage::Pointer                reference;
  std::map<int, PictureLabelImage::Pointer> attention; // kept alive
  TensorData                                patches;
  Model                                     model;
  at::Tensor                                output;
};

PictureLabelFusionFilter::PictureLabelFusionFilter()
  : m_Impl(std::make_unique<Impl>())
{
  agcl::ConfigureThreads();
}
PictureLabelFusionFilter::~PictureLabelFusionFilter() = default;

void
PictureLabelFusionFilter::SetReferenceSize(int64_t height, int64_t width)
{
  if (height < 1 || width < 1)
    throw std::invalid_argument("SetReferenceSize: expected a height and a width >= 1, got " + std::to_string(height) +
                                " x " + std::to_string(width));
  // Only the grid is read: an empty label image of that size.
  auto                          reference = PictureLabelImage::New();
  PictureLabelImage::RegionType region;
  region.SetSize({ { static_cast<itk::SizeValueType>(width), static_cast<itk::SizeValueType>(height) } });
  reference->SetRegions(region);
  reference->Allocate(true);
  m_Impl->reference = reference;
  m_Impl->filter->SetReferenceImage(reference);
}
void
PictureLabelFusionFilter::SetPatches(const TensorData & patches)
{
  m_Impl->patches = patches;
  m_Impl->filter->SetPatches(static_cast<itk::TensorDataObject *>(patches.GetITKObject()));
}
void
PictureLabelFusionFilter::SetAttentionMap(int label, const std::vector<int64_t> & shape, PyObject * buffer)
{
  SetPictureAttentionMapOf(*m_Impl, label, shape, buffer);
}
void
PictureLabelFusionFilter::SetCoarseProbabilities(const std::vector<int64_t> & shape, PyObject * buffer)
{
  if (shape.size() != 4)
    throw std::invalid_argument("coarse probabilities: expected a float32 array [O, 1, h, w]");
  m_Impl->filter->SetCoarseProbabilities(TensorFromBuffer("coarse probabilities", "float32", shape, buffer));
}
void
PictureLabelFusionFilter::SetModel(const Model & model)
{
  SetModelOf(*m_Impl, model);
}
AGCL_PYTHON_PROPERTY(PictureLabelFusionFilter, GaussianWeighting, bool)

void
PictureLabelFusionFilter::Update()
{
  if (!m_Impl->reference)
    throw std::invalid_argument("PictureLabelFusionFilter: no picture size (SetReferenceSize)");
  CallbackError none;
  Impl &        impl = *m_Impl;
  impl.output = at::Tensor();
  RunWithoutGIL(
    [&impl] {
      impl.filter->Update();
      impl.output = TensorOfLabels(impl.filter->GetOutput());
    },
    none);
}
TensorView
PictureLabelFusionFilter::GetOutput() const
{
  return TensorView::FromTensor(&ResultOf(m_Impl->output, "PictureLabelFusionFilter"));
}

} // namespace agcl::python
