/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkCoarseAttentionFilter_hxx
#define itkCoarseAttentionFilter_hxx

#include "itkCoarseAttentionFilter.h"
#include "itkConvertTorchErrors.h"
#include "itkVerifyImageGeometry.h"

#include "itkContinuousIndex.h"
#include "itkImageRegionConstIterator.h"
#include "itkImageRegionIterator.h"
#include "itkLabelBoundingBoxes.h"
#include "itkLinearInterpolateImageFunction.h"
#include "itkNearestNeighborInterpolateImageFunction.h"
#include "itkResampleImageFilter.h"
#include "itkSignedMaurerDistanceMapImageFilter.h"
#include "itkVerifyFiniteImage.h"

#include "agcl/AttentionMap.h"
#include "agcl/Device.h"
#include "agcl/GridResample.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace itk {

namespace coarse_attention_detail {
// Where organ `organ`'s seed (any grid) can give attention on `reference`'s grid: the seed's
// bounding box (`seedBox`, in the seed's index space) and, in `reference`'s index space, the
// box's extent (voxel edges) grown by the margin and 2 voxels, cropped to `within` (`target`).
// False when the seed is empty or the target is.
template <typename TLabelImage, unsigned int VDimension>
bool
SeedTarget(const TLabelImage *                      seed,
           typename TLabelImage::PixelType          organ,
           const ImageBase<VDimension> *            reference,
           const typename TLabelImage::RegionType & within,
           double                                   marginMM,
           typename TLabelImage::RegionType &       seedBox,
           typename TLabelImage::RegionType &       target)
{
  const auto seedBoxes = LabelBoundingBoxes(seed, seed->GetLargestPossibleRegion());
  const auto found = seedBoxes.find(organ);
  if (found == seedBoxes.end())
  {
    return false;
  }
  seedBox = found->second;
  std::array<double, VDimension> low, high;
  low.fill(std::numeric_limits<double>::infinity());
  high.fill(-std::numeric_limits<double>::infinity());
  for (unsigned int corner = 0; corner < (1u << VDimension); ++corner)
  {
    ContinuousIndex<double, VDimension> index;
    for (unsigned int d = 0; d < VDimension; ++d)
    {
      index[d] = (corner >> d & 1u) ? seedBox.GetUpperIndex()[d] + 0.5 : seedBox.GetIndex(d) - 0.5;
    }
    typename TLabelImage::PointType point;
    seed->TransformContinuousIndexToPhysicalPoint(index, point);
    ContinuousIndex<double, VDimension> there;
    reference->TransformPhysicalPointToContinuousIndex(point, there);
    for (unsigned int d = 0; d < VDimension; ++d)
    {
      low[d] = std::min(low[d], there[d]);
      high[d] = std::max(high[d], there[d]);
    }
  }
  for (unsigned int d = 0; d < VDimension; ++d)
  {
    const double grow = std::ceil(marginMM / reference->GetSpacing()[d]) + 2;
    const double first = std::max(std::floor(low[d]) - grow, static_cast<double>(within.GetIndex(d)));
    const double last = std::min(std::ceil(high[d]) + grow, static_cast<double>(within.GetUpperIndex()[d]));
    if (last < first)
    {
      return false;
    }
    target.SetIndex(d, static_cast<IndexValueType>(first));
    target.SetSize(d, static_cast<SizeValueType>(last - first + 1));
  }
  return true;
}

// The buffer of `image` over `region` (inside its buffered region) as rows along x: calls
// row(pointer to the row's first voxel, z, y) for each (z, y) of the region, 3-D.
template <typename TPixel, typename TImage, typename TRow>
void
ForEachRow(TImage * image, const typename TImage::RegionType & region, TRow && row)
{
  typename TImage::IndexType index = region.GetIndex();
  for (SizeValueType z = 0; z < region.GetSize(2); ++z)
    for (SizeValueType y = 0; y < region.GetSize(1); ++y)
    {
      index[1] = region.GetIndex(1) + static_cast<IndexValueType>(y);
      index[2] = region.GetIndex(2) + static_cast<IndexValueType>(z);
      row(static_cast<TPixel *>(image->GetBufferPointer()) + image->ComputeOffset(index),
          static_cast<int64_t>(z),
          static_cast<int64_t>(y));
    }
}

// Organ `organ`'s voxels of `labels` over `box` as a bool tensor [z, y, x]; in `reused`'s
// storage when given (kept there for the next call).
template <typename TLabelImage>
at::Tensor
OrganMask(const TLabelImage *                      labels,
          typename TLabelImage::PixelType          organ,
          const typename TLabelImage::RegionType & box,
          at::Tensor *                             reused)
{
  using LabelType = typename TLabelImage::PixelType;
  const std::vector<int64_t> shape{ static_cast<int64_t>(box.GetSize(2)),
                                    static_cast<int64_t>(box.GetSize(1)),
                                    static_cast<int64_t>(box.GetSize(0)) };
  at::Tensor                 mask;
  if (reused != nullptr && reused->defined() && reused->scalar_type() == at::kBool)
    mask = reused->resize_(shape); // its storage reused
  else
    mask = at::empty(shape, at::kBool);
  if (reused != nullptr)
    *reused = mask;
  bool *        out = mask.data_ptr<bool>();
  const int64_t width = shape[2];
  ForEachRow<const LabelType>(labels, box, [&](const LabelType * in, int64_t z, int64_t y) {
    bool * line = out + (z * shape[1] + y) * width;
    for (int64_t x = 0; x < width; ++x)
      line[x] = in[x] == organ;
  });
  return mask;
}

// Writes 1 into `attention` where the region `grown` (bool [z, y, x] over `box`) is set, within
// attention's buffered region; returns the number of voxels written.
template <typename TLabelImage>
int64_t
WriteRegion(const at::Tensor &                       grown,
            const typename TLabelImage::RegionType & box,
            TLabelImage *                            attention,
            typename TLabelImage::RegionType *       writtenBox)
{
  using LabelType = typename TLabelImage::PixelType;
  auto target = box;
  if (!target.Crop(attention->GetBufferedRegion()))
  {
    return 0;
  }
  if (writtenBox != nullptr)
  {
    *writtenBox = target;
  }
  const at::Tensor region = grown.contiguous();
  const bool *     in = region.data_ptr<bool>();
  const int64_t    sy = static_cast<int64_t>(box.GetSize(1)), sx = static_cast<int64_t>(box.GetSize(0));
  const int64_t    dz = target.GetIndex(2) - box.GetIndex(2), dy = target.GetIndex(1) - box.GetIndex(1),
                dx = target.GetIndex(0) - box.GetIndex(0);
  const int64_t width = static_cast<int64_t>(target.GetSize(0));
  int64_t       written = 0;
  ForEachRow<LabelType>(attention, target, [&](LabelType * out, int64_t z, int64_t y) {
    const bool * line = in + ((z + dz) * sy + (y + dy)) * sx + dx;
    for (int64_t x = 0; x < width; ++x)
    {
      if (line[x])
      {
        out[x] = LabelType{ 1 };
        ++written;
      }
    }
  });
  return written;
}
} // namespace coarse_attention_detail

template <typename TInputImage, typename TLabelImage>
CoarseAttentionFilter<TInputImage, TLabelImage>::CoarseAttentionFilter()
{
  this->AddOptionalInputName("CoarseLabelMap");
  std::vector<LabelType> btcv;
  for (int label = 1; label <= 12; ++label)
  {
    btcv.push_back(static_cast<LabelType>(label));
  }
  SetOrganLabels(btcv);
}

template <typename TInputImage, typename TLabelImage>
void
CoarseAttentionFilter<TInputImage, TLabelImage>::SetOrganLabels(const std::vector<LabelType> & labels)
{
  if (labels.empty())
  {
    itkExceptionMacro(<< "SetOrganLabels: expected at least one organ label");
  }
  std::vector<LabelType> sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end() || sorted.front() == LabelType{})
  {
    itkExceptionMacro(<< "SetOrganLabels: labels must be distinct and non-zero (0 is background)");
  }
  m_OrganLabels = labels;
  const auto previous = this->GetNumberOfIndexedOutputs();
  this->SetNumberOfRequiredOutputs(1 + labels.size());
  this->SetNumberOfIndexedOutputs(1 + labels.size());
  for (size_t i = previous; i <= labels.size(); ++i)
  {
    this->SetNthOutput(i, this->MakeOutput(i));
  }
  this->Modified();
}

template <typename TInputImage, typename TLabelImage>
void
CoarseAttentionFilter<TInputImage, TLabelImage>::SetCoarseLabelMap(const LabelImageType * labels)
{
  this->ProcessObject::SetInput("CoarseLabelMap", const_cast<LabelImageType *>(labels));
}

template <typename TInputImage, typename TLabelImage>
auto
CoarseAttentionFilter<TInputImage, TLabelImage>::GetCoarseLabelMap() const -> const LabelImageType *
{
  return dynamic_cast<const LabelImageType *>(this->ProcessObject::GetInput("CoarseLabelMap"));
}

template <typename TInputImage, typename TLabelImage>
void
CoarseAttentionFilter<TInputImage, TLabelImage>::SetModel(AGCLModelObject * model)
{
  if (model != nullptr)
  {
    std::vector<LabelType> labels;
    for (const auto & organ : model->GetConfig().organs)
    {
      labels.push_back(static_cast<LabelType>(organ.label));
      if (static_cast<int64_t>(labels.back()) != organ.label)
      {
        itkExceptionMacro(<< "SetModel: organ label " << organ.label << " (" << organ.name
                          << ") does not fit the label image's pixel type");
      }
    }
    SetOrganLabels(labels);
  }
  m_Model = model;
  this->Modified();
}

template <typename TInputImage, typename TLabelImage>
void
CoarseAttentionFilter<TInputImage, TLabelImage>::SetModelFileName(const std::string & fileName)
{
  auto model = AGCLModelObject::New();
  model->Load(fileName);
  SetModel(model);
  m_ModelFileName = fileName;
}

template <typename TInputImage, typename TLabelImage>
auto
CoarseAttentionFilter<TInputImage, TLabelImage>::ResampleToCoarseGrid(const InputImageType *    image,
                                                                      const agcl::ModelConfig & config) ->
  typename CoarseImageType::Pointer
{
  const auto                            region = image->GetLargestPossibleRegion();
  const auto                            spacing = image->GetSpacing();
  typename CoarseImageType::SpacingType spacingC;
  typename CoarseImageType::SizeType    sizeC;
  Vector<double, ImageDimension>        shift; // from the input's first voxel centre to the coarse one's
  for (unsigned int d = 0; d < ImageDimension; ++d)
  {
    spacingC[d] = config.coarse_spacing_mm[d];
    sizeC[d] = std::max<SizeValueType>(
      1, static_cast<SizeValueType>(std::ceil(region.GetSize(d) * spacing[d] / spacingC[d] - 1e-6)));
    shift[d] = (spacingC[d] - spacing[d]) / 2.0; // lower edges of the two grids coincide
  }
  typename InputImageType::PointType first;
  image->TransformIndexToPhysicalPoint(region.GetIndex(), first);
  const typename InputImageType::PointType originC = first + image->GetDirection() * shift;

  using ResampleType = ResampleImageFilter<InputImageType, CoarseImageType, double>;
  auto resample = ResampleType::New();
  resample->SetInput(image);
  resample->SetInterpolator(LinearInterpolateImageFunction<InputImageType, double>::New());
  resample->SetOutputSpacing(spacingC);
  resample->SetOutputOrigin(originC);
  resample->SetOutputDirection(image->GetDirection());
  resample->SetSize(sizeC);
  resample->SetDefaultPixelValue(static_cast<float>(config.coarse_window_low));
  resample->Update();
  typename CoarseImageType::Pointer coarse = resample->GetOutput();
  coarse->DisconnectPipeline();
  const double width = config.coarse_window_high - config.coarse_window_low;
  float *      buffer = coarse->GetBufferPointer();
  for (SizeValueType i = 0, n = coarse->GetBufferedRegion().GetNumberOfPixels(); i < n; ++i)
  {
    buffer[i] = static_cast<float>(std::clamp((buffer[i] - config.coarse_window_low) / width, 0.0, 1.0));
  }
  return coarse;
}

template <typename TInputImage, typename TLabelImage>
auto
CoarseAttentionFilter<TInputImage, TLabelImage>::ComputeCoarseLabelMap(const InputImageType *  image,
                                                                       const AGCLModelObject * model,
                                                                       const std::string &     device) ->
  typename LabelImageType::Pointer
{
  return ComputeCoarse(image, model, device).labels;
}

template <typename TInputImage, typename TLabelImage>
auto
CoarseAttentionFilter<TInputImage, TLabelImage>::ComputeCoarse(const InputImageType *  image,
                                                               const AGCLModelObject * model,
                                                               const std::string &     device,
                                                               bool withProbabilities) -> CoarseResult
{
  VerifyFiniteImage(image, "CoarseAttentionFilter: the input image");
  const agcl::ModelConfig & config = model->GetConfig();
  const auto                coarse = ResampleToCoarseGrid(image, config);
  const auto                size = coarse->GetLargestPossibleRegion().GetSize();
  const size_t              voxels = coarse->GetLargestPossibleRegion().GetNumberOfPixels();
  std::vector<uint8_t>      classes(voxels), seeds(voxels * config.organs.size()),
    probabilities(withProbabilities ? voxels * config.organs.size() : 0);
  model->PredictCoarseClasses(
    coarse->GetBufferPointer(),
    { static_cast<int64_t>(size[2]), static_cast<int64_t>(size[1]), static_cast<int64_t>(size[0]) },
    device,
    classes.data(),
    seeds.data(),
    withProbabilities ? probabilities.data() : nullptr);
  auto newLabelImage = [&coarse] {
    auto labels = LabelImageType::New();
    labels->CopyInformation(coarse);
    labels->SetRegions(coarse->GetLargestPossibleRegion());
    labels->Allocate();
    return labels;
  };
  CoarseResult result;
  result.labels = newLabelImage();
  LabelType * out = result.labels->GetBufferPointer();
  for (size_t i = 0; i < voxels; ++i)
  {
    out[i] = classes[i] == 0 ? LabelType{} : static_cast<LabelType>(config.organs.at(classes[i] - 1).label);
  }
  for (size_t o = 0; o < config.organs.size(); ++o)
  {
    result.seeds.push_back(newLabelImage());
    const auto      organ = static_cast<LabelType>(config.organs[o].label);
    const uint8_t * in = seeds.data() + o * voxels;
    LabelType *     seed = result.seeds.back()->GetBufferPointer();
    for (size_t i = 0; i < voxels; ++i)
    {
      seed[i] = in[i] != 0 ? organ : LabelType{};
    }
    if (!withProbabilities)
      continue;
    auto probability = CoarseImageType::New();
    probability->CopyInformation(coarse);
    probability->SetRegions(coarse->GetLargestPossibleRegion());
    probability->Allocate();
    const uint8_t * bytes = probabilities.data() + o * voxels;
    float *         p = probability->GetBufferPointer();
    for (size_t i = 0; i < voxels; ++i)
    {
      p[i] = static_cast<float>(bytes[i]) / 255.0f;
    }
    result.probabilities.push_back(probability);
  }
  return result;
}

template <typename TInputImage, typename TLabelImage>
void
CoarseAttentionFilter<TInputImage, TLabelImage>::ComputeAttentionFromSeed(
  const LabelImageType *                      seed,
  LabelType                                   organ,
  const ImageBase<ImageDimension> *           reference,
  const typename LabelImageType::RegionType & within,
  double                                      marginMM,
  LabelImageType *                            attention)
{
  typename LabelImageType::RegionType seedBox, target;
  if (!coarse_attention_detail::SeedTarget(seed, organ, reference, within, marginMM, seedBox, target))
  {
    return;
  }
  const auto labels = ResampleLabels(seed, reference, target);
  const auto boxes = LabelBoundingBoxes(labels.GetPointer(), target);
  const auto found = boxes.find(organ);
  if (found != boxes.end())
  {
    ComputeAttentionMap(labels, organ, found->second, marginMM, attention);
  }
}

template <typename TInputImage, typename TLabelImage>
int64_t
CoarseAttentionFilter<TInputImage, TLabelImage>::ComputeAttentionFromSeedTensor(
  const LabelImageType *                      seed,
  LabelType                                   organ,
  const ImageBase<ImageDimension> *           reference,
  const typename LabelImageType::RegionType & within,
  double                                      marginMM,
  LabelImageType *                            attention,
  typename LabelImageType::RegionType *       writtenBox,
  agcl::MarginWorkspace *                     workspace)
{
  using namespace coarse_attention_detail;
  typename LabelImageType::RegionType seedBox, target;
  if (!SeedTarget(seed, organ, reference, within, marginMM, seedBox, target))
  {
    return 0;
  }
  // Where target's voxel j falls in the seed box's continuous index, axis by axis: scale * j +
  // offset, from the physical points of target's first voxel and its neighbours (the grids share
  // their direction; otherwise the ITK resampling).
  std::array<agcl::AxisMapping, 3> mapping;
  {
    typename LabelImageType::PointType point;
    reference->TransformIndexToPhysicalPoint(target.GetIndex(), point);
    ContinuousIndex<double, ImageDimension> start;
    seed->TransformPhysicalPointToContinuousIndex(point, start);
    for (unsigned int d = 0; d < ImageDimension; ++d)
    {
      auto next = target.GetIndex();
      next[d] += 1;
      reference->TransformIndexToPhysicalPoint(next, point);
      ContinuousIndex<double, ImageDimension> step;
      seed->TransformPhysicalPointToContinuousIndex(point, step);
      for (unsigned int e = 0; e < ImageDimension; ++e)
      {
        if (e != d && std::abs(step[e] - start[e]) > 1e-9)
        {
          const auto labels = ResampleLabels(seed, reference, target); // rotated grids
          const auto boxes = LabelBoundingBoxes(labels.GetPointer(), target);
          const auto found = boxes.find(organ);
          return found == boxes.end()
                   ? 0
                   : ComputeAttentionMapTensor(
                       labels, organ, found->second, target, marginMM, attention, writtenBox, workspace);
        }
      }
      mapping[2 - d] = agcl::AxisMapping{ step[d] - start[d], start[d] - static_cast<double>(seedBox.GetIndex(d)) };
    }
  }
  // The seed's box as a mask, resampled (nearest) onto the target, grown by the margin.
  const at::Tensor mask = OrganMask(seed, organ, seedBox, nullptr);
  at::Tensor       grown;
  ConvertTorchErrors("CoarseAttentionFilter", [&] {
    const at::Tensor labels = agcl::ResampleNearest(mask,
                                                    mapping,
                                                    { static_cast<int64_t>(target.GetSize(2)),
                                                      static_cast<int64_t>(target.GetSize(1)),
                                                      static_cast<int64_t>(target.GetSize(0)) },
                                                    0.0);
    const auto       spacing = reference->GetSpacing();
    grown = agcl::GrowByMargin(
      labels, { spacing[2], spacing[1], spacing[0] }, marginMM, agcl::MarginKernels::Automatic, workspace);
  });
  return WriteRegion(grown, target, attention, writtenBox);
}

template <typename TInputImage, typename TLabelImage>
int64_t
CoarseAttentionFilter<TInputImage, TLabelImage>::ComputeAttentionMapTensor(
  const LabelImageType *                      labels,
  LabelType                                   organ,
  const typename LabelImageType::RegionType & organBox,
  const typename LabelImageType::RegionType & within,
  double                                      marginMM,
  LabelImageType *                            attention,
  typename LabelImageType::RegionType *       writtenBox,
  agcl::MarginWorkspace *                     workspace)
{
  using namespace coarse_attention_detail;
  // The organ's box grown by the margin (as ComputeAttentionMap), inside `within` and the labels.
  const auto                          spacing = labels->GetSpacing();
  typename LabelImageType::RegionType box;
  for (unsigned int d = 0; d < ImageDimension; ++d)
  {
    const auto grow = static_cast<IndexValueType>(std::ceil(marginMM / spacing[d])) + 1;
    box.SetIndex(d, organBox.GetIndex(d) - grow);
    box.SetSize(d, organBox.GetSize(d) + 2 * static_cast<SizeValueType>(grow));
  }
  auto bounds = within;
  if (!bounds.Crop(labels->GetBufferedRegion()) || !box.Crop(bounds))
  {
    return 0;
  }
  auto target = box;
  if (!target.Crop(attention->GetBufferedRegion()))
  {
    return 0; // the organ is farther than the margin from the attention map's region
  }
  const at::Tensor mask = OrganMask(labels, organ, box, workspace != nullptr ? &workspace->mask : nullptr);
  at::Tensor       grown;
  ConvertTorchErrors("CoarseAttentionFilter", [&] {
    grown = agcl::GrowByMargin(
      mask, { spacing[2], spacing[1], spacing[0] }, marginMM, agcl::MarginKernels::Automatic, workspace);
  });
  return WriteRegion(grown, box, attention, writtenBox);
}

template <typename TInputImage, typename TLabelImage>
auto
CoarseAttentionFilter<TInputImage, TLabelImage>::ResampleLabels(const LabelImageType *                      labels,
                                                                const ImageBase<ImageDimension> *           reference,
                                                                const typename LabelImageType::RegionType & region) ->
  typename LabelImageType::Pointer
{
  auto resample = ResampleImageFilter<LabelImageType, LabelImageType, double>::New();
  resample->SetInput(labels);
  resample->SetInterpolator(NearestNeighborInterpolateImageFunction<LabelImageType, double>::New());
  resample->SetOutputSpacing(reference->GetSpacing());
  resample->SetOutputOrigin(reference->GetOrigin());
  resample->SetOutputDirection(reference->GetDirection());
  resample->SetOutputStartIndex(region.GetIndex());
  resample->SetSize(region.GetSize());
  resample->SetDefaultPixelValue(LabelType{});
  resample->Update();
  typename LabelImageType::Pointer result = resample->GetOutput();
  result->DisconnectPipeline();
  return result;
}

template <typename TInputImage, typename TLabelImage>
auto
CoarseAttentionFilter<TInputImage, TLabelImage>::GetCoarseLabelOutput() -> LabelImageType *
{
  return this->GetOutput(0);
}

template <typename TInputImage, typename TLabelImage>
auto
CoarseAttentionFilter<TInputImage, TLabelImage>::GetAttentionMap(LabelType label) -> LabelImageType *
{
  const auto it = std::find(m_OrganLabels.begin(), m_OrganLabels.end(), label);
  if (it == m_OrganLabels.end())
  {
    itkExceptionMacro(<< "GetAttentionMap: " << static_cast<double>(label) << " is not one of the organ labels");
  }
  return this->GetOutput(static_cast<unsigned int>(1 + (it - m_OrganLabels.begin())));
}

template <typename TInputImage, typename TLabelImage>
auto
CoarseAttentionFilter<TInputImage, TLabelImage>::GetCoarseProbabilityMap(LabelType label) const
  -> const CoarseImageType *
{
  const auto it = m_CoarseProbability.find(label);
  if (it == m_CoarseProbability.end())
  {
    itkExceptionMacro(<< "GetCoarseProbabilityMap: no coarse probability for " << static_cast<double>(label)
                      << " (not an organ, not updated yet, or the coarse map was given instead of the network)");
  }
  return it->second;
}

template <typename TInputImage, typename TLabelImage>
void
CoarseAttentionFilter<TInputImage, TLabelImage>::VerifyPreconditions() ITKv5_CONST
{
  Superclass::VerifyPreconditions();
  if (!(m_MarginMM >= 0.0) || !std::isfinite(m_MarginMM))
  {
    itkExceptionMacro(<< "MarginMM " << m_MarginMM << ": expected a finite margin >= 0 mm");
  }
  if (this->GetCoarseLabelMap() == nullptr)
  {
    if (m_Model.IsNull() || !m_Model->HasModel())
    {
      itkExceptionMacro(<< "no coarse label map and no model: call SetCoarseLabelMap() with a segmentation of the "
                           "input, or SetModel()/SetModelFileName() to run the coarse network");
    }
    ConvertTorchErrors("Device", [this] { agcl::ParseDevice(m_Device); });
    const agcl::ModelConfig & config = m_Model->GetConfig();
    if (config.image_dimensions != static_cast<int64_t>(ImageDimension))
    {
      itkExceptionMacro(<< "the model (" << (m_Model->GetFileName().empty() ? "set in memory" : m_Model->GetFileName())
                        << ") is for " << config.image_dimensions << "D images; the input is " << ImageDimension << "D"
                        << (config.image_dimensions == 2 ? " (2D pictures: itk::PictureCoarseAttentionFilter)" : ""));
    }
    for (const LabelType label : m_OrganLabels)
    {
      if (config.OrganIndex(static_cast<int64_t>(label)) < 0)
      {
        itkExceptionMacro(<< "organ label " << static_cast<double>(label) << " is not one of the model's "
                          << config.organs.size() << " organs (model "
                          << (m_Model->GetFileName().empty() ? "set in memory" : m_Model->GetFileName()) << ")");
      }
    }
  }
}

template <typename TInputImage, typename TLabelImage>
void
CoarseAttentionFilter<TInputImage, TLabelImage>::VerifyInputInformation() ITKv5_CONST
{
  Superclass::VerifyInputInformation(); // same physical space (origin, spacing, direction)
  const auto * image = this->GetInput();
  const auto * labels = this->GetCoarseLabelMap();
  if (image->GetLargestPossibleRegion().GetNumberOfPixels() == 0)
  {
    itkExceptionMacro(<< "the input image is empty");
  }
  if (labels != nullptr && image->GetLargestPossibleRegion() != labels->GetLargestPossibleRegion())
  {
    itkExceptionMacro(<< "the coarse label map covers " << labels->GetLargestPossibleRegion().GetSize()
                      << " voxels from index " << labels->GetLargestPossibleRegion().GetIndex()
                      << "; expected the input's " << image->GetLargestPossibleRegion().GetSize() << " from "
                      << image->GetLargestPossibleRegion().GetIndex());
  }
}

template <typename TInputImage, typename TLabelImage>
void
CoarseAttentionFilter<TInputImage, TLabelImage>::GenerateInputRequestedRegion()
{
  Superclass::GenerateInputRequestedRegion();
  // Distances need the whole volume.
  for (const auto & name : this->GetInputNames())
  {
    if (auto * input = dynamic_cast<ImageBase<ImageDimension> *>(this->ProcessObject::GetInput(name)))
    {
      input->SetRequestedRegionToLargestPossibleRegion();
    }
  }
}

template <typename TInputImage, typename TLabelImage>
void
CoarseAttentionFilter<TInputImage, TLabelImage>::EnlargeOutputRequestedRegion(DataObject * output)
{
  Superclass::EnlargeOutputRequestedRegion(output);
  output->SetRequestedRegionToLargestPossibleRegion();
}

template <typename TInputImage, typename TLabelImage>
void
CoarseAttentionFilter<TInputImage, TLabelImage>::GenerateData()
{
  typename LabelImageType::ConstPointer coarse = this->GetCoarseLabelMap();
  const InputImageType *                image = this->GetInput();
  VerifyImageGeometry(image, "CoarseAttentionFilter: the input image"); // bounds the grids and margins
  CoarseResult network;                                                 // when the coarse network runs
  m_CoarseProbability.clear();
  if (coarse.IsNull())
  {
    network = ComputeCoarse(image, m_Model, m_Device);
    coarse = ResampleLabels(network.labels, image, image->GetLargestPossibleRegion());
    for (const LabelType organ : m_OrganLabels)
    {
      const auto index = m_Model->GetConfig().OrganIndex(static_cast<int64_t>(organ));
      m_CoarseProbability[organ] = network.probabilities.at(static_cast<size_t>(index));
    }
  }
  const auto region = coarse->GetLargestPossibleRegion();

  // Output 0: the coarse label map, organs only (other label values become background).
  LabelImageType * labelsOut = this->GetOutput(0);
  labelsOut->SetBufferedRegion(labelsOut->GetRequestedRegion());
  labelsOut->Allocate();
  {
    const LabelType * in = coarse->GetBufferPointer();
    LabelType *       out = labelsOut->GetBufferPointer();
    for (SizeValueType v = 0, n = region.GetNumberOfPixels(); v < n; ++v)
    {
      out[v] =
        std::find(m_OrganLabels.begin(), m_OrganLabels.end(), in[v]) == m_OrganLabels.end() ? LabelType{} : in[v];
    }
  }
  // The organs' boxes in the given map (the network's attention grows from its seeds instead).
  const auto            boxes = network.labels.IsNull()
                                  ? LabelBoundingBoxes(static_cast<const LabelImageType *>(labelsOut), region)
                                  : std::map<LabelType, typename LabelImageType::RegionType>{};
  agcl::MarginWorkspace workspace; // the tensor stages' buffers, reused from organ to organ
  for (size_t o = 0; o < m_OrganLabels.size(); ++o)
  {
    LabelImageType * attention = this->GetOutput(static_cast<unsigned int>(1 + o));
    attention->SetBufferedRegion(attention->GetRequestedRegion());
    attention->Allocate();
    attention->FillBuffer(LabelType{});
    if (network.labels.IsNotNull())
    {
      const auto             index = m_Model->GetConfig().OrganIndex(static_cast<int64_t>(m_OrganLabels[o]));
      const LabelImageType * seed = network.seeds.at(static_cast<size_t>(index));
      if (m_TensorStages)
        ComputeAttentionFromSeedTensor(
          seed, m_OrganLabels[o], image, region, m_MarginMM, attention, nullptr, &workspace);
      else
        ComputeAttentionFromSeed(seed, m_OrganLabels[o], image, region, m_MarginMM, attention);
      continue;
    }
    const auto found = boxes.find(m_OrganLabels[o]);
    if (found != boxes.end()) // an absent organ has an empty attention map
    {
      if (m_TensorStages)
        ComputeAttentionMapTensor(
          labelsOut, m_OrganLabels[o], found->second, region, m_MarginMM, attention, nullptr, &workspace);
      else
        ComputeAttentionMap(labelsOut, m_OrganLabels[o], found->second, m_MarginMM, attention);
    }
  }
}

template <typename TInputImage, typename TLabelImage>
void
CoarseAttentionFilter<TInputImage, TLabelImage>::ComputeAttentionMap(
  const LabelImageType *                      labels,
  LabelType                                   organ,
  const typename LabelImageType::RegionType & organBox,
  double                                      marginMM,
  LabelImageType *                            attention)
{
  using MaskType = Image<unsigned char, ImageDimension>;
  using DistanceType = Image<float, ImageDimension>;
  const auto region = labels->GetBufferedRegion();
  const auto spacing = labels->GetSpacing();
  // The organ's box grown by the margin, within the labels and the attention map: the distance
  // map is computed only there.
  typename LabelImageType::RegionType box;
  for (unsigned int d = 0; d < ImageDimension; ++d)
  {
    const auto grow = static_cast<IndexValueType>(std::ceil(marginMM / spacing[d])) + 1;
    const auto first = std::max(region.GetIndex(d), organBox.GetIndex(d) - grow);
    const auto last = std::min(region.GetIndex(d) + static_cast<IndexValueType>(region.GetSize(d)) - 1,
                               organBox.GetIndex(d) + static_cast<IndexValueType>(organBox.GetSize(d)) - 1 + grow);
    box.SetIndex(d, first);
    box.SetSize(d, static_cast<SizeValueType>(std::max<IndexValueType>(0, last - first + 1)));
  }
  auto target = box;
  if (!target.Crop(attention->GetBufferedRegion()))
  {
    return; // the organ is farther than the margin from the attention map's region
  }
  auto mask = MaskType::New();
  mask->CopyInformation(labels);
  mask->SetRegions(box);
  mask->Allocate();
  {
    ImageRegionConstIterator<LabelImageType> in(labels, box);
    ImageRegionIterator<MaskType>            out(mask, box);
    for (; !in.IsAtEnd(); ++in, ++out)
    {
      out.Set(in.Get() == organ ? 1 : 0);
    }
  }
  // Euclidean distance in mm from each voxel centre to the nearest organ voxel (0 inside).
  auto distance = SignedMaurerDistanceMapImageFilter<MaskType, DistanceType>::New();
  distance->SetInput(mask);
  distance->SetUseImageSpacing(true);
  distance->SetSquaredDistance(false);
  distance->SetInsideIsPositive(false);
  distance->SetBackgroundValue(0);
  distance->Update();
  ImageRegionConstIterator<DistanceType> d(distance->GetOutput(), target);
  ImageRegionConstIterator<MaskType>     m(mask, target);
  ImageRegionIterator<LabelImageType>    out(attention, target);
  const double                           margin = marginMM + 1e-6;
  for (; !d.IsAtEnd(); ++d, ++m, ++out)
  {
    if (m.Get() != 0 || d.Get() <= margin)
    {
      out.Set(LabelType{ 1 });
    }
  }
}

template <typename TInputImage, typename TLabelImage>
void
CoarseAttentionFilter<TInputImage, TLabelImage>::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "MarginMM: " << m_MarginMM << std::endl;
  os << indent << "TensorStages: " << m_TensorStages << std::endl;
  os << indent << "ModelFileName: " << m_ModelFileName << std::endl;
  os << indent << "Model: " << (m_Model.IsNull() ? "none" : "set") << std::endl;
  os << indent << "Device: " << m_Device << std::endl;
  os << indent << "OrganLabels:";
  for (const auto & label : m_OrganLabels)
  {
    os << " " << static_cast<double>(label);
  }
  os << std::endl;
}

} // namespace itk

#endif
