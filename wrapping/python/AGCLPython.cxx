/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "AGCLPython.h"
#include "AGCLPythonInternal.h"

#include "agcl/JsonInput.h"
#include "agcl/AGCLModel.h"
#include "agcl/AGCLTrainer.h"
#include "itkAGCLCalibration.h"
#include "agcl/BuildInfo.h"
#include "agcl/Threading.h"
#include "itkAGCLSegmentationFilter.h"
#include "itkAbdominalPhantomImageSource.h"
#include "itkCoarseAttentionFilter.h"
#include "itkImageFileReader.h"
#include "itkImageIOFactory.h"
#include "itkManifestTrainingData.h"
#include "itkReadVolume.h"
#include "itkWriteImageAtomically.h"
#include "itkSegmentationMetrics.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

namespace agcl::python {
namespace {

using namespace detail;

template <typename TImage>
typename TImage::Pointer
NewImage(const std::vector<int64_t> & shape)
{
  if (shape.size() != 3)
    throw std::invalid_argument("image shape: expected 3 dimensions (z, y, x), got " + std::to_string(shape.size()));
  typename TImage::SizeType size;
  for (unsigned d = 0; d < 3; ++d)
  {
    if (shape[2 - d] < 1)
      throw std::invalid_argument("image shape: every dimension must be >= 1");
    size[d] = static_cast<itk::SizeValueType>(shape[2 - d]);
  }
  auto image = TImage::New();
  image->SetRegions(typename TImage::RegionType(size));
  image->Allocate();
  return image;
}

size_t
PixelSize(const std::string & pixelType)
{
  if (pixelType == "int16")
    return 2;
  if (pixelType == "uint8")
    return 1;
  if (pixelType == "float32")
    return 4;
  throw std::invalid_argument("pixel type '" + pixelType + "': expected int16, uint8 or float32");
}

} // namespace

// ------------------------------------------------------------------------------------ Image
struct Image::Holder
{
  itk::ImageBase<3>::Pointer image;
  std::string                pixelType;
};

Image::Image() = default;
Image::~Image() = default;
Image::Image(const Image &) = default;
Image &
Image::operator=(const Image &) = default;

Image
Image::FromBuffer(const std::string & pixelType, const std::vector<int64_t> & shape, uintptr_t data, uint64_t nbytes)
{
  const size_t pixel = PixelSize(pixelType);
  Image        result;
  result.m_Holder = std::make_shared<Holder>();
  result.m_Holder->pixelType = pixelType;
  if (pixelType == "int16")
    result.m_Holder->image = NewImage<CTImage>(shape);
  else if (pixelType == "uint8")
    result.m_Holder->image = NewImage<LabelImage>(shape);
  else
    result.m_Holder->image = NewImage<FloatImage>(shape);
  const uint64_t expected = static_cast<uint64_t>(shape[0] * shape[1] * shape[2]) * pixel;
  if (nbytes != expected)
    throw std::invalid_argument("image data: " + std::to_string(nbytes) + " bytes for shape (" +
                                std::to_string(shape[0]) + ", " + std::to_string(shape[1]) + ", " +
                                std::to_string(shape[2]) + ") of " + pixelType + "; expected " +
                                std::to_string(expected));
  std::memcpy(reinterpret_cast<void *>(result.GetBufferAddress()), reinterpret_cast<const void *>(data), nbytes);
  return result;
}

Image
Image::FromArrayInt16(const short * data, int nz, int ny, int nx)
{
  return FromBuffer("int16", { nz, ny, nx }, reinterpret_cast<uintptr_t>(data), uint64_t(nz) * ny * nx * 2);
}
Image
Image::FromArrayUInt8(const unsigned char * data, int nz, int ny, int nx)
{
  return FromBuffer("uint8", { nz, ny, nx }, reinterpret_cast<uintptr_t>(data), uint64_t(nz) * ny * nx);
}
Image
Image::FromArrayFloat32(const float * data, int nz, int ny, int nx)
{
  return FromBuffer("float32", { nz, ny, nx }, reinterpret_cast<uintptr_t>(data), uint64_t(nz) * ny * nx * 4);
}

void *
Image::GetITKImage() const
{
  if (!m_Holder)
    throw std::invalid_argument("the image is empty (default-constructed)");
  return m_Holder->image.GetPointer();
}

Image
Image::FromITK(void * itkImage, const std::string & pixelType)
{
  PixelSize(pixelType);
  Image result;
  result.m_Holder = std::make_shared<Holder>();
  result.m_Holder->image = static_cast<itk::ImageBase<3> *>(itkImage);
  result.m_Holder->pixelType = pixelType;
  return result;
}

std::string
Image::GetPixelType() const
{
  GetITKImage();
  return m_Holder->pixelType;
}

std::vector<int64_t>
Image::GetShape() const
{
  const auto size = static_cast<itk::ImageBase<3> *>(GetITKImage())->GetBufferedRegion().GetSize();
  return { static_cast<int64_t>(size[2]), static_cast<int64_t>(size[1]), static_cast<int64_t>(size[0]) };
}

uintptr_t
Image::GetBufferAddress() const
{
  void * image = GetITKImage();
  if (m_Holder->pixelType == "int16")
    return reinterpret_cast<uintptr_t>(static_cast<CTImage *>(image)->GetBufferPointer());
  if (m_Holder->pixelType == "uint8")
    return reinterpret_cast<uintptr_t>(static_cast<LabelImage *>(image)->GetBufferPointer());
  return reinterpret_cast<uintptr_t>(static_cast<FloatImage *>(image)->GetBufferPointer());
}

uint64_t
Image::GetBufferSize() const
{
  const auto shape = GetShape();
  return static_cast<uint64_t>(shape[0] * shape[1] * shape[2]) * PixelSize(m_Holder->pixelType);
}

std::vector<double>
Image::GetSpacing() const
{
  const auto s = static_cast<itk::ImageBase<3> *>(GetITKImage())->GetSpacing();
  return { s[0], s[1], s[2] };
}

void
Image::SetSpacing(const std::vector<double> & spacing)
{
  if (spacing.size() != 3 || !(spacing[0] > 0 && spacing[1] > 0 && spacing[2] > 0))
    throw std::invalid_argument("spacing: expected 3 positive values (x, y, z) in mm");
  static_cast<itk::ImageBase<3> *>(GetITKImage())->SetSpacing(spacing.data());
}

std::vector<double>
Image::GetOrigin() const
{
  const auto o = static_cast<itk::ImageBase<3> *>(GetITKImage())->GetOrigin();
  return { o[0], o[1], o[2] };
}

void
Image::SetOrigin(const std::vector<double> & origin)
{
  if (origin.size() != 3 || !std::isfinite(origin[0] + origin[1] + origin[2]))
    throw std::invalid_argument("origin: expected 3 finite values (x, y, z) in mm");
  static_cast<itk::ImageBase<3> *>(GetITKImage())->SetOrigin(origin.data());
}

std::vector<double>
Image::GetDirection() const
{
  const auto          d = static_cast<itk::ImageBase<3> *>(GetITKImage())->GetDirection();
  std::vector<double> out;
  for (unsigned r = 0; r < 3; ++r)
    for (unsigned c = 0; c < 3; ++c)
      out.push_back(d[r][c]);
  return out;
}

void
Image::SetDirection(const std::vector<double> & direction)
{
  if (direction.size() != 9)
    throw std::invalid_argument("direction: expected 9 values (a row-major 3 x 3 matrix)");
  itk::ImageBase<3>::DirectionType d;
  for (unsigned r = 0; r < 3; ++r)
    for (unsigned c = 0; c < 3; ++c)
      d[r][c] = direction[3 * r + c];
  if (std::abs(vnl_determinant(d.GetVnlMatrix().as_ref())) < 1e-6)
    throw std::invalid_argument("direction: the matrix is singular");
  static_cast<itk::ImageBase<3> *>(GetITKImage())->SetDirection(d);
}

Image
Image::AsInt16() const
{
  if (GetPixelType() == "int16")
    return *this;
  auto out = NewImage<CTImage>(GetShape());
  out->CopyInformation(static_cast<itk::ImageBase<3> *>(GetITKImage()));
  short *       target = out->GetBufferPointer();
  const int64_t n = static_cast<int64_t>(out->GetBufferedRegion().GetNumberOfPixels());
  if (GetPixelType() == "uint8")
  {
    const auto * source = reinterpret_cast<const unsigned char *>(GetBufferAddress());
    std::copy(source, source + n, target);
  }
  else
  {
    const auto * source = reinterpret_cast<const float *>(GetBufferAddress());
    for (int64_t i = 0; i < n; ++i)
    {
      if (!std::isfinite(source[i]) || source[i] < -32768.5f || source[i] > 32767.5f)
        throw std::invalid_argument("image: voxel " + std::to_string(i) + " = " + std::to_string(source[i]) +
                                    " does not fit a CT's int16 (finite HU expected)");
      target[i] = static_cast<short>(std::lround(source[i]));
    }
  }
  return FromITK(out.GetPointer(), "int16");
}

Image
ReadImage(const std::string & fileName)
{
  if (!std::filesystem::exists(fileName))
    throw std::invalid_argument("imread: '" + fileName + "': no such file");
  ReleasedGIL released; // reading takes time; other Python threads go on
  try
  {
    if (std::filesystem::is_directory(fileName))
      return Image::FromITK(itk::ReadDicomSeriesFolder<CTImage>(fileName, "DICOM series").GetPointer(), "int16");
    auto io = itk::ImageIOFactory::CreateImageIO(fileName.c_str(), itk::ImageIOFactory::IOFileModeEnum::ReadMode);
    if (!io)
      throw std::invalid_argument("imread: '" + fileName + "': no ITK reader knows this file");
    io->SetFileName(fileName);
    io->ReadImageInformation();
    if (io->GetNumberOfDimensions() != 3 && !(io->GetNumberOfDimensions() == 4 && io->GetDimensions(3) == 1))
      throw std::invalid_argument("imread: '" + fileName + "' has " + std::to_string(io->GetNumberOfDimensions()) +
                                  " dimensions; expected a 3D volume");
    if (io->GetNumberOfComponents() != 1)
      throw std::invalid_argument("imread: '" + fileName + "' has vector pixels; expected scalars");
    using Component = itk::IOComponentEnum;
    const Component component = io->GetComponentType();
    if (component == Component::UCHAR)
      return Image::FromITK(itk::ReadVolume<LabelImage>(fileName, "image").GetPointer(), "uint8");
    if (component == Component::FLOAT || component == Component::DOUBLE)
      return Image::FromITK(itk::ReadVolume<FloatImage>(fileName, "image").GetPointer(), "float32");
    // Other integers: int16, after a range check (no silent wrapping).
    auto wide = itk::ReadVolume<itk::Image<double, 3>>(fileName, "image");
    auto out = CTImage::New();
    out->CopyInformation(wide);
    out->SetRegions(wide->GetLargestPossibleRegion());
    out->Allocate();
    const double * source = wide->GetBufferPointer();
    short *        target = out->GetBufferPointer();
    for (size_t i = 0, n = wide->GetBufferedRegion().GetNumberOfPixels(); i < n; ++i)
    {
      if (source[i] < -32768 || source[i] > 32767)
        throw std::invalid_argument("imread: '" + fileName + "': value " + std::to_string(source[i]) +
                                    " does not fit int16");
      target[i] = static_cast<short>(source[i]);
    }
    return Image::FromITK(out.GetPointer(), "int16");
  }
  catch (const itk::ExceptionObject & e)
  {
    // The library's readers name the file; ITK's ImageIO (the header read above) may not.
    const std::string description = e.GetDescription();
    throw std::runtime_error(description.find(fileName) != std::string::npos
                               ? "imread: " + description
                               : "imread: cannot read '" + fileName + "': " + description);
  }
}

void
WriteImage(const Image & image, const std::string & fileName)
{
  void *      itkImage = image.GetITKImage();
  ReleasedGIL released;
  try
  {
    if (image.GetPixelType() == "int16")
      itk::WriteImageAtomically(static_cast<CTImage *>(itkImage), fileName);
    else if (image.GetPixelType() == "uint8")
      itk::WriteImageAtomically(static_cast<LabelImage *>(itkImage), fileName);
    else
      itk::WriteImageAtomically(static_cast<FloatImage *>(itkImage), fileName);
  }
  catch (const itk::ExceptionObject & e)
  {
    throw std::runtime_error("imwrite: " + std::string(e.GetDescription())); // names the file
  }
}

// ---------------------------------------------------------------------- SegmentationFilter
struct SegmentationFilter::Impl
{
  using Filter = itk::AGCLSegmentationFilter<CTImage, LabelImage>;
  Filter::Pointer      filter = Filter::New();
  Image                input; // keeps the input alive
  PyObject *           progress = nullptr;
  CallbackError        callbackError;
  bool                 callbackFailed = false;
  std::optional<Image> output; // the last Update's, taken from the filter
};

SegmentationFilter::SegmentationFilter()
  : m_Impl(std::make_unique<Impl>())
{
  agcl::ConfigureThreads();
  Impl * impl = m_Impl.get();
  impl->filter->AddObserver(itk::ProgressEvent(), [impl](const itk::EventObject &) {
    if (impl->progress == nullptr || impl->callbackFailed)
      return;
    const double progress = impl->filter->GetProgress();
    if (!CallPython(
          impl->progress, [progress] { return PyFloat_FromDouble(progress); }, impl->callbackError))
    {
      impl->callbackFailed = true;
      impl->filter->AbortGenerateDataOn();
    }
  });
}

SegmentationFilter::~SegmentationFilter()
{
  Py_XDECREF(m_Impl->progress);
}

void
SegmentationFilter::SetInput(const Image & image)
{
  m_Impl->input = image.AsInt16();
  m_Impl->filter->SetInput(static_cast<CTImage *>(m_Impl->input.GetITKImage()));
}

void
SegmentationFilter::SetModelFileName(const std::string & fileName)
{
  m_Impl->filter->SetModelFileName(fileName);
}
std::string
SegmentationFilter::GetModelFileName() const
{
  return m_Impl->filter->GetModelFileName();
}
void
SegmentationFilter::SetModel(const Model & model)
{
  m_Impl->filter->SetModel(static_cast<itk::AGCLModelObject *>(model.GetITKModel()));
}
AGCL_PYTHON_DEVICE(SegmentationFilter)
AGCL_PYTHON_PROPERTY(SegmentationFilter, BatchSize, unsigned int)
AGCL_PYTHON_PROPERTY(SegmentationFilter, SlabThickness, unsigned int)
AGCL_PYTHON_PROPERTY(SegmentationFilter, PostProcessing, bool)
AGCL_PYTHON_PROPERTY(SegmentationFilter, TensorPatchStages, bool)
AGCL_PYTHON_PROPERTY_AS(SegmentationFilter, Precision, const std::string &, std::string)

void
SegmentationFilter::SetProgressCallback(PyObject * callable)
{
  if (callable == Py_None)
    callable = nullptr;
  if (callable != nullptr && !PyCallable_Check(callable))
    throw std::invalid_argument("progress callback: expected a callable (or None)");
  Py_XINCREF(callable);
  Py_XDECREF(m_Impl->progress);
  m_Impl->progress = callable;
}

void
SegmentationFilter::Update()
{
  if (m_Impl->filter->GetInput() == nullptr)
    throw std::invalid_argument("AGCLSegmentationFilter: no input image (SetInput)");
  m_Impl->callbackFailed = false;
  m_Impl->output.reset();
  auto & filter = m_Impl->filter;
  RunWithoutGIL(
    [&filter] {
      try
      {
        filter->Update();
      }
      catch (...)
      {
        filter->AbortGenerateDataOff(); // usable again
        filter->Modified();
        throw;
      }
    },
    m_Impl->callbackError);
  m_Impl->output = TakeOutput(m_Impl->filter->GetOutput(), "uint8");
}

Image
SegmentationFilter::GetOutput() const
{
  return OutputOf(m_Impl->output, "AGCLSegmentationFilter");
}

std::string
SegmentationFilter::GetStageSecondsJson() const
{
  return nlohmann::json(m_Impl->filter->GetStageSeconds()).dump();
}

std::string
SegmentationFilter::GetOrganReportJson() const
{
  const itk::AGCLOrganReport & report = m_Impl->filter->GetOrganReport();
  nlohmann::json               organs = nlohmann::json::array();
  for (const auto & organ : report.organs)
    organs.push_back(
      { { "label", organ.label },
        { "name", organ.name },
        { "voxels", organ.voxels },
        { "volume_ml", organ.volumeML },
        { "mean_probability",
          std::isfinite(organ.meanProbability) ? nlohmann::json(organ.meanProbability) : nlohmann::json() },
        { "warning", organ.warning } });
  return nlohmann::json{
    { "organs", organs },
    { "statistics", report.statistics },
    { "intensity_distance_hu",
      std::isfinite(report.intensityDistanceHU) ? nlohmann::json(report.intensityDistanceHU) : nlohmann::json() },
    { "warnings", report.Warnings() }
  }.dump();
}

uint64_t
SegmentationFilter::GetNumberOfPatches() const
{
  return m_Impl->filter->GetNumberOfPatches();
}

// ------------------------------------------------------------------------- CoarseAttention
struct CoarseAttentionFilter::Impl
{
  using Filter = itk::CoarseAttentionFilter<CTImage, LabelImage>;
  Filter::Pointer      filter = Filter::New();
  Image                input, coarse; // kept alive
  std::optional<Image> coarseOutput;  // the last Update's outputs, taken from the filter
  std::map<int, Image> attention;
};

CoarseAttentionFilter::CoarseAttentionFilter()
  : m_Impl(std::make_unique<Impl>())
{
  agcl::ConfigureThreads();
}
CoarseAttentionFilter::~CoarseAttentionFilter() = default;

void
CoarseAttentionFilter::SetInput(const Image & image)
{
  m_Impl->input = image.AsInt16();
  m_Impl->filter->SetInput(static_cast<CTImage *>(m_Impl->input.GetITKImage()));
}
void
CoarseAttentionFilter::SetCoarseLabelMap(const Image & labels)
{
  m_Impl->filter->SetCoarseLabelMap(LabelImageOf(labels, "CoarseLabelMap"));
  m_Impl->coarse = labels;
}
void
CoarseAttentionFilter::SetModelFileName(const std::string & fileName)
{
  try
  {
    m_Impl->filter->SetModelFileName(fileName);
  }
  catch (const itk::ExceptionObject & e)
  {
    throw std::runtime_error(e.GetDescription());
  }
}
void
CoarseAttentionFilter::SetModel(const Model & model)
{
  m_Impl->filter->SetModel(static_cast<itk::AGCLModelObject *>(model.GetITKModel()));
}
AGCL_PYTHON_DEVICE(CoarseAttentionFilter)
AGCL_PYTHON_PROPERTY(CoarseAttentionFilter, MarginMM, double)
void
CoarseAttentionFilter::SetOrganLabels(const std::vector<int> & labels)
{
  std::vector<unsigned char> organs;
  for (int label : labels)
  {
    if (label < 1 || label > 255)
      throw std::invalid_argument("OrganLabels: " + std::to_string(label) + " outside 1..255");
    organs.push_back(static_cast<unsigned char>(label));
  }
  try
  {
    m_Impl->filter->SetOrganLabels(organs);
  }
  catch (const itk::ExceptionObject & e)
  {
    throw std::invalid_argument(e.GetDescription());
  }
}
std::vector<int>
CoarseAttentionFilter::GetOrganLabels() const
{
  const auto & labels = m_Impl->filter->GetOrganLabels();
  return std::vector<int>(labels.begin(), labels.end());
}
void
CoarseAttentionFilter::Update()
{
  if (m_Impl->filter->GetInput() == nullptr)
    throw std::invalid_argument("CoarseAttentionFilter: no input image (SetInput)");
  CallbackError none;
  auto &        filter = m_Impl->filter;
  m_Impl->coarseOutput.reset();
  m_Impl->attention.clear();
  RunWithoutGIL([&filter] { filter->Update(); }, none);
  m_Impl->coarseOutput = TakeOutput(filter->GetCoarseLabelOutput(), "uint8");
  for (const auto label : filter->GetOrganLabels())
    m_Impl->attention.emplace(int(label), TakeOutput(filter->GetAttentionMap(label), "uint8"));
}
Image
CoarseAttentionFilter::GetCoarseProbabilityMap(int label) const
{
  const unsigned char organ = OrganLabel(label, "GetCoarseProbabilityMap");
  try
  {
    // The filter's own image of the last Update (a later Update makes a new one).
    FloatImage::Pointer map = const_cast<FloatImage *>(m_Impl->filter->GetCoarseProbabilityMap(organ));
    return Image::FromITK(map.GetPointer(), "float32");
  }
  catch (const itk::ExceptionObject & e)
  {
    throw std::invalid_argument(e.GetDescription());
  }
}
Image
CoarseAttentionFilter::GetCoarseLabelOutput() const
{
  return OutputOf(m_Impl->coarseOutput, "CoarseAttentionFilter");
}
Image
CoarseAttentionFilter::GetAttentionMap(int label) const
{
  if (label < 1 || label > 255)
    throw std::invalid_argument("GetAttentionMap: " + std::to_string(label) + " outside 1..255");
  const auto found = m_Impl->attention.find(label);
  if (found != m_Impl->attention.end())
    return found->second;
  try
  {
    m_Impl->filter->GetAttentionMap(static_cast<unsigned char>(label)); // names a label that is no organ's
  }
  catch (const itk::ExceptionObject & e)
  {
    throw std::invalid_argument(e.GetDescription());
  }
  throw std::invalid_argument("CoarseAttentionFilter: no output yet (call Update)");
}

// ------------------------------------------------------------------------------- functions
std::vector<Image>
Phantom(const std::vector<int64_t> & size, uint64_t seed, const std::string & modality)
{
  using Source = itk::AbdominalPhantomImageSource;
  if (size.size() != 3 || size[0] < 8 || size[1] < 8 || size[2] < 4)
    throw std::invalid_argument("phantom: size must be 3 values (x, y, z), at least 8 x 8 x 4");
  if (modality != "contrast" && modality != "noncontrast")
    throw std::invalid_argument("phantom: modality '" + modality + "': expected contrast or noncontrast");
  auto source = Source::New();
  source->SetSize(Source::SizeType{ { static_cast<itk::SizeValueType>(size[0]),
                                      static_cast<itk::SizeValueType>(size[1]),
                                      static_cast<itk::SizeValueType>(size[2]) } });
  source->SetSeed(seed);
  source->SetModality(modality == "contrast" ? Source::ModalityEnum::PortalVenous : Source::ModalityEnum::NonContrast);
  source->Update();
  CTImage::Pointer    ct = source->GetOutput();
  LabelImage::Pointer labels = source->GetLabelOutput();
  return { Image::FromITK(ct.GetPointer(), "int16"), Image::FromITK(labels.GetPointer(), "uint8") };
}

std::string
EvaluateJson(const Image & prediction, const Image & reference, const std::vector<int> & labels)
{
  if (prediction.GetPixelType() != "uint8" || reference.GetPixelType() != "uint8")
    throw std::invalid_argument("evaluate: prediction and reference must be uint8 label maps");
  std::vector<unsigned char> organs;
  for (int label : labels)
  {
    if (label < 1 || label > 255)
      throw std::invalid_argument("evaluate: label " + std::to_string(label) + " outside 1..255");
    organs.push_back(static_cast<unsigned char>(label));
  }
  using Metrics = itk::SegmentationMetrics<LabelImage>;
  try
  {
    nlohmann::json out = nlohmann::json::array();
    for (const auto & m : Metrics::Compute(static_cast<LabelImage *>(reference.GetITKImage()),
                                           static_cast<LabelImage *>(prediction.GetITKImage()),
                                           organs))
    {
      auto value = [](const std::optional<double> & v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
      out.push_back({ { "label", int(m.label) },
                      { "status", Metrics::StatusName(m.status) },
                      { "dice", value(m.dice) },
                      { "iou", value(m.iou) },
                      { "msd_mm", value(m.msd) },
                      { "hd_mm", value(m.hd) },
                      { "hd95_mm", value(m.hd95) },
                      { "reference_voxels", m.referenceVoxels },
                      { "predicted_voxels", m.predictedVoxels } });
    }
    return out.dump();
  }
  catch (const itk::ExceptionObject & e)
  {
    throw std::invalid_argument(std::string("evaluate: ") + e.GetDescription());
  }
}

std::string
ModelConfigJson(const std::string & fileName)
{
  try
  {
    return AGCLModel::Load(fileName).Config().ToJson().dump();
  }
  catch (const ModelBundleError & e)
  {
    throw std::invalid_argument(e.what());
  }
}

std::string
Train(const std::string & manifest,
      const std::string & outputDirectory,
      const std::string & configJson,
      const std::string & optionsJson,
      PyObject *          progress)
{
  agcl::ConfigureThreads();
  if (progress == Py_None)
    progress = nullptr;
  if (progress != nullptr && !PyCallable_Check(progress))
    throw std::invalid_argument("train: progress must be a callable or None");
  ModelConfig                                   config;
  AGCLTrainerOptions                            o;
  std::function<void(const TrainingProgress &)> trainerCallback;
  try
  {
    if (!configJson.empty())
      config = ModelConfig::FromJson(agcl::ParseJson(configJson, "model config"));
    // The AGCLTrainerOptions names; every other key is an error (named).
    o = OptionsFromJson(optionsJson.empty() ? nlohmann::json::object() : agcl::ParseJson(optionsJson, "options"));
  }
  catch (const nlohmann::json::exception & e)
  {
    throw std::invalid_argument(std::string("train: bad config or option value: ") + e.what());
  }
  catch (const ModelBundleError & e)
  {
    throw std::invalid_argument(std::string("train: config: ") + e.what());
  }
  o.output_directory(outputDirectory);
  if (!o.init_from().empty())
    config = AGCLModel::Load(o.init_from()).Config();
  o.model(config);
  CallbackError callbackError;
  if (progress != nullptr)
  {
    trainerCallback = [progress, &callbackError](const TrainingProgress & p) {
      const bool ok = CallPython(
        progress,
        [&p] {
          return Py_BuildValue("{s:i,s:L,s:L,s:d,s:d,s:d,s:d}",
                               "stage",
                               p.stage,
                               "step",
                               static_cast<long long>(p.step),
                               "steps",
                               static_cast<long long>(p.steps),
                               "loss",
                               p.loss,
                               "learning_rate",
                               p.learning_rate,
                               "patches_per_second",
                               p.patches_per_second,
                               "eta_seconds",
                               p.eta_seconds);
        },
        callbackError);
      if (!ok)
        throw PythonErrorAlreadySet(); // stops the training at this logging step
    };
  }
  // Reading the cohort and training run without the GIL (other Python threads go on); the
  // callback takes it for each call.
  std::string model;
  RunWithoutGIL(
    [&] {
      itk::ManifestTrainingData data(manifest, config);
      AGCLTrainer               trainer(o);
      if (trainerCallback)
        trainer.SetProgressCallback(trainerCallback);
      model = trainer.Run(data);
      if (o.stage() < 0 || o.stage() == 2)
        itk::CalibrateTrainedModel(model, manifest, o.device());
    },
    callbackError);
  return model;
}

std::string
CalibrateModel(const std::string & modelFile,
               const std::string & manifest,
               const std::string & outFile,
               const std::string & split,
               const std::string & device)
{
  agcl::ConfigureThreads();
  nlohmann::json statistics;
  CallbackError  noCallback;
  RunWithoutGIL([&] { statistics = itk::CalibrateAGCLModelFile(modelFile, manifest, outFile, split, device); },
                noCallback);
  return statistics.dump();
}

std::string
Version()
{
  return agcl::Version();
}

} // namespace agcl::python
