/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// The facade's model bundle, tensor data and patch-level filters (the sampler, the encoder and
// decoder filters and the label fusion); images and the one-call filter are in AGCLPython.cxx.
#include "AGCLPython.h"
#include "AGCLPythonInternal.h"

#include "agcl/JsonInput.h"
#include "agcl/AGCLModel.h"
#include "agcl/ModelBundle.h"
#include "agcl/Device.h"
#include "agcl/Threading.h"
#include "itkAGCLEncoderFilter.h"
#include "itkAGCLModelObject.h"
#include "itkASPPDecoderFilter.h"
#include "itkLabelFusionFilter.h"
#include "itkQueryPatchSamplerFilter.h"

#include <torch/types.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <memory>

namespace agcl::python {
using namespace detail;

namespace {

// numpy has no bfloat16: the bundle format's dtypes less that one.
at::ScalarType
ParseDType(const std::string & name, const std::string & what)
{
  const auto found = BundleDtypes().find(name);
  if (found == BundleDtypes().end() || found->second == at::kBFloat16)
    throw std::invalid_argument(what + ": dtype " + name + " is not supported");
  return found->second;
}

std::string
DTypeName(at::ScalarType type)
{
  const auto found = std::find_if(BundleDtypes().begin(), BundleDtypes().end(), [type](const auto & entry) {
    return entry.second == type && type != at::kBFloat16;
  });
  if (found == BundleDtypes().end())
    throw std::invalid_argument(std::string("tensor dtype ") + c10::toString(type) + " has no numpy equivalent here");
  return found->first;
}

} // namespace

// ------------------------------------------------------------------------------------ Model
struct Model::Holder
{
  itk::AGCLModelObject::Pointer model = itk::AGCLModelObject::New();
};

Model::Model() = default;
Model::~Model() = default;
Model::Model(const Model &) = default;
Model &
Model::operator=(const Model &) = default;

Model
Model::Load(const std::string & fileName)
{
  Model result;
  result.m_Holder = std::make_shared<Holder>();
  try
  {
    ReleasedGIL released;
    result.m_Holder->model->Load(fileName);
  }
  catch (const itk::ExceptionObject & e)
  {
    throw std::invalid_argument(e.GetDescription());
  }
  return result;
}

Model
Model::FromConfig(const std::string & configJson, uint64_t seed)
{
  ModelConfig config;
  try
  {
    if (!configJson.empty())
      config = ModelConfig::FromJson(agcl::ParseJson(configJson, "model config"));
    config.Validate();
  }
  catch (const nlohmann::json::exception & e)
  {
    throw std::invalid_argument(std::string("model config: ") + e.what());
  }
  catch (const ModelBundleError & e)
  {
    throw std::invalid_argument(e.what());
  }
  torch::manual_seed(seed);
  Model result;
  result.m_Holder = std::make_shared<Holder>();
  result.m_Holder->model->SetModel(std::make_shared<AGCLModel>(config));
  return result;
}

void
Model::Save(const std::string & fileName) const
{
  auto * model = static_cast<itk::AGCLModelObject *>(GetITKModel());
  try
  {
    ReleasedGIL released;
    model->GetModel().Save(fileName);
  }
  catch (const std::exception & e)
  {
    throw std::runtime_error("cannot save the model to '" + fileName + "': " + e.what());
  }
}

std::string
Model::GetConfigJson() const
{
  return static_cast<itk::AGCLModelObject *>(GetITKModel())->GetConfig().ToJson().dump();
}

std::string
Model::GetFileName() const
{
  return static_cast<itk::AGCLModelObject *>(GetITKModel())->GetFileName();
}

void *
Model::GetITKModel() const
{
  if (!m_Holder || !m_Holder->model->HasModel())
    throw std::invalid_argument("the model is empty (use Model.Load or Model.FromConfig)");
  return m_Holder->model.GetPointer();
}

// ------------------------------------------------------------------------------- TensorView
struct TensorView::Holder
{
  at::Tensor tensor; // contiguous, on the CPU
};

TensorView::TensorView() = default;
TensorView::~TensorView() = default;
TensorView::TensorView(const TensorView &) = default;

TensorView
TensorView::FromTensor(const void * tensor)
{
  const auto & source = *static_cast<const at::Tensor *>(tensor);
  TensorView   view;
  view.m_Holder = std::make_shared<Holder>();
  view.m_Holder->tensor = source.detach().to(at::kCPU).contiguous(); // no copy when already so
  DTypeName(view.m_Holder->tensor.scalar_type());
  return view;
}

std::string
TensorView::GetDType() const
{
  if (!m_Holder)
    throw std::invalid_argument("empty tensor view");
  return DTypeName(m_Holder->tensor.scalar_type());
}

std::vector<int64_t>
TensorView::GetShape() const
{
  GetDType();
  const auto sizes = m_Holder->tensor.sizes();
  return std::vector<int64_t>(sizes.begin(), sizes.end());
}

uintptr_t
TensorView::GetBufferAddress() const
{
  GetDType();
  return reinterpret_cast<uintptr_t>(m_Holder->tensor.data_ptr());
}

uint64_t
TensorView::GetBufferSize() const
{
  GetDType();
  return static_cast<uint64_t>(m_Holder->tensor.nbytes());
}

// ------------------------------------------------------------------------------- TensorData
struct TensorData::Holder
{
  itk::TensorDataObject::Pointer object;
};

TensorData::TensorData()
  : m_Holder(std::make_shared<Holder>())
{
  m_Holder->object = itk::TensorDataObject::New();
}
TensorData::~TensorData() = default;
TensorData::TensorData(const TensorData &) = default;
TensorData &
TensorData::operator=(const TensorData &) = default;

void *
TensorData::GetITKObject() const
{
  return m_Holder->object.GetPointer();
}

TensorData
TensorData::FromITK(void * object)
{
  TensorData result;
  result.m_Holder->object = static_cast<itk::TensorDataObject *>(object);
  return result;
}

std::vector<std::string>
TensorData::GetTensorNames() const
{
  return m_Holder->object->GetTensorNames();
}

bool
TensorData::HasTensor(const std::string & name) const
{
  return m_Holder->object->HasTensor(name);
}

TensorView
TensorData::GetTensor(const std::string & name) const
{
  try
  {
    return TensorView::FromTensor(&m_Holder->object->GetTensor(name));
  }
  catch (const itk::ExceptionObject & e)
  {
    throw std::invalid_argument(e.GetDescription());
  }
}

at::Tensor
detail::TensorFromBuffer(const std::string &          what,
                         const std::string &          dtype,
                         const std::vector<int64_t> & shape,
                         PyObject *                   buffer)
{
  const at::ScalarType type = ParseDType(dtype, what);
  uint64_t             expected = c10::elementSize(type);
  for (int64_t extent : shape)
  {
    if (extent < 0)
      throw std::invalid_argument(what + ": negative extent in its shape");
    if (extent > 0 && expected > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(extent))
      throw std::invalid_argument(what + ": its shape overflows");
    expected *= static_cast<uint64_t>(extent);
  }
  // The caller's buffer, held while it is copied (the GIL is held: called from Python).
  Py_buffer view;
  if (buffer == nullptr || PyObject_GetBuffer(buffer, &view, PyBUF_C_CONTIGUOUS) != 0)
  {
    PyErr_Clear();
    throw std::invalid_argument(what + ": expected an object with a C-contiguous buffer (a numpy array)");
  }
  std::unique_ptr<Py_buffer, void (*)(Py_buffer *)> release(&view, PyBuffer_Release);
  if (view.len < 0 || static_cast<uint64_t>(view.len) != expected)
    throw std::invalid_argument(what + ": " + std::to_string(view.len) + " bytes do not match its shape (" +
                                std::to_string(expected) + " expected)");
  at::Tensor tensor = torch::empty(shape, torch::TensorOptions().dtype(type));
  if (expected > 0)
    std::memcpy(tensor.data_ptr(), view.buf, expected);
  return tensor;
}

void
TensorData::SetTensorFromBuffer(const std::string &          name,
                                const std::string &          dtype,
                                const std::vector<int64_t> & shape,
                                PyObject *                   buffer)
{
  const at::Tensor tensor = TensorFromBuffer("tensor '" + name + "'", dtype, shape, buffer);
  try
  {
    m_Holder->object->SetTensor(name, tensor);
  }
  catch (const itk::ExceptionObject & e)
  {
    throw std::invalid_argument(e.GetDescription());
  }
}

void
TensorData::RemoveTensor(const std::string & name)
{
  m_Holder->object->RemoveTensor(name);
}

std::string
TensorData::GetMetadataJson() const
{
  nlohmann::json out = nlohmann::json::array();
  for (const auto & m : m_Holder->object->GetMetadata())
    out.push_back({ { "organ", m.organ },
                    { "modality", m.modality },
                    { "slice", m.slice },
                    { "index", m.index },
                    { "origin", m.origin },
                    { "spacing", m.spacing },
                    { "axes", m.axes } });
  return out.dump();
}

void
TensorData::SetMetadataJson(const std::string & json)
{
  itk::TensorDataObject::MetadataType metadata;
  try
  {
    const auto items = agcl::ParseJson(json, "metadata");
    if (!items.is_array())
      throw std::invalid_argument("metadata: expected a list with one dict per item");
    for (size_t i = 0; i < items.size(); ++i)
    {
      const auto & item = items[i];
      if (!item.is_object())
        throw std::invalid_argument("metadata[" + std::to_string(i) + "]: expected a dict");
      itk::TensorItemMetadata m;
      for (const auto & [key, value] : item.items())
      {
        if (key == "organ")
          m.organ = value.get<int>();
        else if (key == "modality")
          m.modality = value.get<int>();
        else if (key == "slice")
          m.slice = value.get<int64_t>();
        else if (key == "index")
          m.index = value.get<std::array<int64_t, 3>>();
        else if (key == "origin")
          m.origin = value.get<std::array<double, 3>>();
        else if (key == "spacing")
          m.spacing = value.get<std::array<double, 2>>();
        else if (key == "axes")
          m.axes = value.get<std::array<double, 6>>();
        else
          throw std::invalid_argument("metadata[" + std::to_string(i) + "]: unknown key '" + key +
                                      "' (expected organ, modality, slice, index, origin, spacing, axes)");
      }
      metadata.push_back(m);
    }
    m_Holder->object->SetMetadata(metadata);
  }
  catch (const nlohmann::json::exception & e)
  {
    throw std::invalid_argument(std::string("metadata: ") + e.what());
  }
  catch (const itk::ExceptionObject & e)
  {
    throw std::invalid_argument(std::string("metadata: ") + e.GetDescription());
  }
}

int64_t
TensorData::GetNumberOfItems() const
{
  return m_Holder->object->GetNumberOfItems();
}

// ------------------------------------------------------------------ QueryPatchSamplerFilter
struct QueryPatchSamplerFilter::Impl
{
  using Filter = itk::QueryPatchSamplerFilter<CTImage, LabelImage>;
  Filter::Pointer      filter = Filter::New();
  Image                input, labels; // kept alive
  std::map<int, Image> attention;
};

QueryPatchSamplerFilter::QueryPatchSamplerFilter()
  : m_Impl(std::make_unique<Impl>())
{
  agcl::ConfigureThreads();
}
QueryPatchSamplerFilter::~QueryPatchSamplerFilter() = default;

void
QueryPatchSamplerFilter::SetInput(const Image & image)
{
  m_Impl->input = image.AsInt16();
  m_Impl->filter->SetInput(static_cast<CTImage *>(m_Impl->input.GetITKImage()));
}
void
QueryPatchSamplerFilter::SetAttentionMap(int organ, const Image & attention)
{
  SetAttentionMapOf(*m_Impl, organ, attention);
}
void
QueryPatchSamplerFilter::SetLabelMap(const Image & labels)
{
  m_Impl->filter->SetLabelMap(LabelImageOf(labels, "SetLabelMap"));
  m_Impl->labels = labels;
}
void
QueryPatchSamplerFilter::SetMode(const std::string & mode)
{
  if (mode != "inference" && mode != "training")
    throw std::invalid_argument("Mode '" + mode + "': expected inference or training");
  m_Impl->filter->SetMode(mode == "training" ? Impl::Filter::ModeEnum::Training : Impl::Filter::ModeEnum::Inference);
}
std::string
QueryPatchSamplerFilter::GetMode() const
{
  return m_Impl->filter->GetMode() == Impl::Filter::ModeEnum::Training ? "training" : "inference";
}

AGCL_PYTHON_PROPERTY(QueryPatchSamplerFilter, PatchSize, unsigned int)
AGCL_PYTHON_PROPERTY(QueryPatchSamplerFilter, PatchSpacingMM, double)
AGCL_PYTHON_PROPERTY(QueryPatchSamplerFilter, PatchesPerOrgan, unsigned int)
AGCL_PYTHON_PROPERTY(QueryPatchSamplerFilter, Overlap, double)
AGCL_PYTHON_PROPERTY(QueryPatchSamplerFilter, Seed, uint64_t)
AGCL_PYTHON_PROPERTY(QueryPatchSamplerFilter, WindowLow, double)
AGCL_PYTHON_PROPERTY(QueryPatchSamplerFilter, WindowHigh, double)
AGCL_PYTHON_PROPERTY(QueryPatchSamplerFilter, Modality, int)

void
QueryPatchSamplerFilter::Update()
{
  if (m_Impl->filter->GetInput() == nullptr)
    throw std::invalid_argument("QueryPatchSamplerFilter: no input image (SetInput)");
  CallbackError none;
  auto &        filter = m_Impl->filter;
  RunWithoutGIL([&filter] { filter->Update(); }, none);
}
TensorData
QueryPatchSamplerFilter::GetOutput() const
{
  return TensorData::FromITK(m_Impl->filter->GetOutput());
}

// ---------------------------------------------------------------------------- NetworkFilter
struct NetworkFilter::Impl
{
  std::string                          kind;
  itk::TensorDataObjectFilter::Pointer filter;
  TensorData                           input; // kept alive
  Model                                model;
};

NetworkFilter::NetworkFilter(const std::string & kind)
  : m_Impl(std::make_unique<Impl>())
{
  agcl::ConfigureThreads();
  m_Impl->kind = kind;
  if (kind == "encoder")
    m_Impl->filter = itk::AGCLEncoderFilter::New().GetPointer();
  else if (kind == "decoder")
    m_Impl->filter = itk::ASPPDecoderFilter::New().GetPointer();
  else
    throw std::invalid_argument("network filter kind '" + kind + "': expected encoder or decoder");
}
NetworkFilter::~NetworkFilter() = default;

void
NetworkFilter::SetInput(const TensorData & input)
{
  m_Impl->input = input;
  m_Impl->filter->SetInput(static_cast<itk::TensorDataObject *>(input.GetITKObject()));
}
void
NetworkFilter::SetModel(const Model & model)
{
  auto & networks = static_cast<itk::AGCLModelObject *>(model.GetITKModel())->GetModel();
  m_Impl->model = model;
  if (m_Impl->kind == "encoder")
  {
    // The encoder gives the stem features when the model's decoder reads them (output stride 2).
    auto * encoder = static_cast<itk::AGCLEncoderFilter *>(m_Impl->filter.GetPointer());
    encoder->SetEncoder(networks.Encoder());
    encoder->SetStemFeatures(networks.Decoder()->UsesStem());
  }
  else
    static_cast<itk::ASPPDecoderFilter *>(m_Impl->filter.GetPointer())->SetDecoder(networks.Decoder());
}
AGCL_PYTHON_DEVICE(NetworkFilter)
AGCL_PYTHON_PROPERTY(NetworkFilter, BatchSize, unsigned int)
void
NetworkFilter::Update()
{
  const std::string name = m_Impl->kind == "encoder" ? "AGCLEncoderFilter" : "ASPPDecoderFilter";
  if (m_Impl->filter->GetInput() == nullptr)
    throw std::invalid_argument(name + ": no input (SetInput)");
  CallbackError none;
  auto &        filter = m_Impl->filter;
  RunWithoutGIL([&filter] { filter->Update(); }, none);
}
TensorData
NetworkFilter::GetOutput() const
{
  return TensorData::FromITK(m_Impl->filter->GetOutput());
}

// ------------------------------------------------------------------------ LabelFusionFilter
struct LabelFusionFilter::Impl
{
  using Filter = itk::LabelFusionFilter<LabelImage>;
  Filter::Pointer      filter = Filter::New();
  TensorData           patches;
  Image                reference;
  std::map<int, Image> attention, coarse;
  std::optional<Image> output; // the last Update's, taken from the filter
};

LabelFusionFilter::LabelFusionFilter()
  : m_Impl(std::make_unique<Impl>())
{
  agcl::ConfigureThreads();
}
LabelFusionFilter::~LabelFusionFilter() = default;

void
LabelFusionFilter::SetPatches(const TensorData & patches)
{
  m_Impl->patches = patches;
  m_Impl->filter->SetPatches(static_cast<itk::TensorDataObject *>(patches.GetITKObject()));
}
void
LabelFusionFilter::SetReferenceImage(const Image & reference)
{
  m_Impl->reference = reference;
  m_Impl->filter->SetReferenceImage(static_cast<itk::ImageBase<3> *>(reference.GetITKImage()));
}
void
LabelFusionFilter::SetAttentionMap(int organ, const Image & attention)
{
  SetAttentionMapOf(*m_Impl, organ, attention);
}

void
LabelFusionFilter::SetCoarseProbabilityMap(int organ, const Image & probability)
{
  const unsigned char label = OrganLabel(organ, "SetCoarseProbabilityMap");
  if (probability.GetPixelType() != "float32")
    throw std::invalid_argument("SetCoarseProbabilityMap: expected a float32 probability image, got " +
                                probability.GetPixelType());
  m_Impl->coarse[organ] = probability;
  m_Impl->filter->SetCoarseProbabilityMap(label, static_cast<FloatImage *>(probability.GetITKImage()));
}

void
LabelFusionFilter::SetOrganThreshold(int organ, double threshold)
{
  m_Impl->filter->SetOrganThreshold(OrganLabel(organ, "SetOrganThreshold"), threshold);
}

double
LabelFusionFilter::GetOrganThreshold(int organ) const
{
  return m_Impl->filter->GetOrganThreshold(OrganLabel(organ, "GetOrganThreshold"));
}

AGCL_PYTHON_PROPERTY(LabelFusionFilter, CoarseWeight, double)
AGCL_PYTHON_PROPERTY(LabelFusionFilter, CoarseVoteScaledToPeak, bool)
AGCL_PYTHON_PROPERTY(LabelFusionFilter, Threshold, double)
AGCL_PYTHON_PROPERTY(LabelFusionFilter, GaussianWeighting, bool)
AGCL_PYTHON_PROPERTY(LabelFusionFilter, PostProcessing, bool)
AGCL_PYTHON_PROPERTY(LabelFusionFilter, ProbabilityMaps, bool)

void
LabelFusionFilter::Update()
{
  CallbackError none;
  auto &        filter = m_Impl->filter;
  m_Impl->output.reset();
  RunWithoutGIL([&filter] { filter->Update(); }, none);
  m_Impl->output = TakeOutput(filter->GetOutput(), "uint8");
}

Image
LabelFusionFilter::GetOutput() const
{
  return OutputOf(m_Impl->output, "LabelFusionFilter");
}

Image
LabelFusionFilter::GetProbabilityMap(int organ) const
{
  const unsigned char label = OrganLabel(organ, "GetProbabilityMap");
  try
  {
    // A new map per run (the filter's own, not an output): a later Update leaves this one alone.
    FloatImage::Pointer map = const_cast<FloatImage *>(m_Impl->filter->GetProbabilityMap(label));
    return Image::FromITK(map.GetPointer(), "float32");
  }
  catch (const itk::ExceptionObject & e)
  {
    throw std::invalid_argument(e.GetDescription());
  }
}

} // namespace agcl::python
