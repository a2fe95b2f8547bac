/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkAGCLSegmentationFilter_hxx
#define itkAGCLSegmentationFilter_hxx

#include "itkAGCLSegmentationFilter.h"
#include "itkAGCLModelStatistics.h"
#include "itkConvertTorchErrors.h"

#include "itkAGCLEncoderFilter.h"
#include "itkASPPDecoderFilter.h"
#include "itkCoarseAttentionFilter.h"
#include "itkExtractImageFilter.h"
#include "itkImageAlgorithm.h"
#include "itkImageRegionIterator.h"
#include "itkTensorPixelTraits.h"
#include "itkLabelBoundingBoxes.h"
#include "itkLabelFusionFilter.h"
#include "itkVerifyImageGeometry.h"
#include "itkQueryPatchSamplerFilter.h"
#include "itkVerifyFiniteImage.h"

#include "agcl/AGCLModel.h"

#include <ATen/ops/cat.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/stack.h>
#include "agcl/PatchStages.h"
#include "agcl/Device.h"
#include "agcl/TorchCompat.h"

#if defined(__GLIBC__)
#  include <malloc.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

namespace itk {

namespace agcl_segmentation_detail {
using coarse_attention_detail::ForEachRow;
// A copy of `region` of `image` (same index space and physical geometry).
template <typename TImage>
typename TImage::Pointer
ExtractRegion(const TImage * image, const typename TImage::RegionType & region)
{
  auto extract = ExtractImageFilter<TImage, TImage>::New();
  extract->SetInput(image);
  extract->SetExtractionRegion(region);
  extract->SetDirectionCollapseToSubmatrix();
  extract->Update();
  typename TImage::Pointer result = extract->GetOutput();
  result->DisconnectPipeline();
  return result;
}

// Gives freed memory back to the system (glibc keeps freed blocks in its arenas). Called after
// the coarse stage and at the end of the run, not after every slab: a trimmed page costs a page
// fault when the next slab touches it again, and on the development VM those faults were most of
// the sampling, fusion and attention time (BM_Segment/512/120: sampling 0.30-0.33 s with a trim
// per slab, 0.11-0.18 s without; peak +10 MiB; the memory check's 128 / 64-slice ratios unchanged
// within 0.01). No-op elsewhere.
inline void
ReleaseFreedMemory()
{
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

// A [Z, Y, X] buffer (x fastest) as a tensor on `device`: float and double pixels as they are
// (viewed without a copy on the CPU), other pixel types as float (exact for 8- and 16-bit CT).
template <typename TPixel>
at::Tensor
VolumeTensor(const TPixel * buffer, const std::array<int64_t, 3> & zyx, const c10::Device & device)
{
  const at::IntArrayRef sizes(zyx.data(), 3);
  if constexpr (std::is_same_v<TPixel, float>)
    return at::from_blob(const_cast<float *>(buffer), sizes, at::kFloat).to(device);
  else if constexpr (std::is_same_v<TPixel, double>)
    return at::from_blob(const_cast<double *>(buffer), sizes, at::kDouble).to(device);
  else
  {
    at::Tensor copy = at::empty(sizes, at::kFloat);
    std::transform(
      buffer, buffer + copy.numel(), copy.data_ptr<float>(), [](TPixel v) { return static_cast<float>(v); });
    return copy.to(device);
  }
}

// A label buffer's non-zero voxels as a [Z, Y, X] uint8 or bool tensor on the CPU (uint8
// labels viewed without a copy).
template <typename TLabel>
at::Tensor
MaskTensor(const TLabel * buffer, const std::array<int64_t, 3> & zyx)
{
  const at::IntArrayRef sizes(zyx.data(), 3);
  if constexpr (std::is_same_v<TLabel, unsigned char>)
    return at::from_blob(const_cast<unsigned char *>(buffer), sizes, at::kByte);
  else
  {
    at::Tensor mask = at::empty(sizes, at::kByte);
    std::transform(
      buffer, buffer + mask.numel(), mask.data_ptr<uint8_t>(), [](TLabel v) { return v != TLabel{} ? 1 : 0; });
    return mask;
  }
}
} // namespace agcl_segmentation_detail

template <typename TInputImage, typename TLabelImage>
AGCLSegmentationFilter<TInputImage, TLabelImage>::AGCLSegmentationFilter()
{
  this->AddOptionalInputName("CoarseLabelMap");
}

template <typename TInputImage, typename TLabelImage>
void
AGCLSegmentationFilter<TInputImage, TLabelImage>::SetModel(AGCLModelObject * model)
{
  m_Model = model;
  m_ModelFromFile = false;
  m_LoadedFileName.clear();
  this->Modified();
}

template <typename TInputImage, typename TLabelImage>
void
AGCLSegmentationFilter<TInputImage, TLabelImage>::SetCoarseLabelMap(const LabelImageType * labels)
{
  this->ProcessObject::SetInput("CoarseLabelMap", const_cast<LabelImageType *>(labels));
}

template <typename TInputImage, typename TLabelImage>
auto
AGCLSegmentationFilter<TInputImage, TLabelImage>::GetCoarseLabelMap() const -> const LabelImageType *
{
  return dynamic_cast<const LabelImageType *>(this->ProcessObject::GetInput("CoarseLabelMap"));
}

template <typename TInputImage, typename TLabelImage>
auto
AGCLSegmentationFilter<TInputImage, TLabelImage>::GetProbabilityMap(LabelType organ) const
  -> const ProbabilityImageType *
{
  const auto it = m_Probability.find(organ);
  if (it == m_Probability.end())
  {
    itkExceptionMacro(<< "no probability map for organ " << static_cast<double>(organ)
                      << " (not segmented yet, not one of the model's organs, or ProbabilityMaps off)");
  }
  return it->second;
}

template <typename TInputImage, typename TLabelImage>
auto
AGCLSegmentationFilter<TInputImage, TLabelImage>::GetCoarseLabelMapOutput() const -> const LabelImageType *
{
  if (m_CoarseOutput.IsNull())
  {
    itkExceptionMacro(<< "no coarse label map kept: call KeepCoarseOutputsOn() before Update()");
  }
  return m_CoarseOutput;
}

template <typename TInputImage, typename TLabelImage>
auto
AGCLSegmentationFilter<TInputImage, TLabelImage>::GetAttentionMap(LabelType organ) const -> const LabelImageType *
{
  const auto it = m_AttentionOutputs.find(organ);
  if (it == m_AttentionOutputs.end())
  {
    itkExceptionMacro(<< "no attention map for organ " << static_cast<double>(organ)
                      << " (not segmented yet, not one of the model's organs, or KeepCoarseOutputs off)");
  }
  return it->second;
}

template <typename TInputImage, typename TLabelImage>
void
AGCLSegmentationFilter<TInputImage, TLabelImage>::VerifyPreconditions() ITKv5_CONST
{
  Superclass::VerifyPreconditions();
  if ((m_Model.IsNull() || m_ModelFromFile) && m_ModelFileName.empty())
  {
    itkExceptionMacro(<< "no model: call SetModelFileName(\"model.agcl\") or SetModel()");
  }
  if (m_BatchSize == 0)
  {
    itkExceptionMacro(<< "BatchSize 0: expected at least 1 patch per batch");
  }
  if (m_SlabThickness == 0)
  {
    itkExceptionMacro(<< "SlabThickness 0: expected at least 1 slice per slab");
  }
  ConvertTorchErrors("Device", [this] { agcl::ParseDevice(m_Device); });
  ConvertTorchErrors("Precision", [this] { agcl::ParsePrecision(m_Precision, agcl::ParseDevice(m_Device).type()); });
}

template <typename TInputImage, typename TLabelImage>
void
AGCLSegmentationFilter<TInputImage, TLabelImage>::VerifyInputInformation() ITKv5_CONST
{
  Superclass::VerifyInputInformation(); // same physical space for the optional coarse map
  const auto * image = this->GetInput();
  const auto   size = image->GetLargestPossibleRegion().GetSize();
  if (image->GetLargestPossibleRegion().GetNumberOfPixels() == 0)
  {
    itkExceptionMacro(<< "the input image is empty");
  }
  for (unsigned int d = 0; d < ImageDimension; ++d)
  {
    if (size[d] < 2)
    {
      itkExceptionMacro(<< "the input image has size " << size
                        << ": a 2D image (one voxel along an axis); expected a 3D volume");
    }
  }
  VerifyImageGeometry(image, "the input image");
  const auto * coarse = this->GetCoarseLabelMap();
  if (coarse != nullptr && coarse->GetLargestPossibleRegion() != image->GetLargestPossibleRegion())
  {
    itkExceptionMacro(<< "the coarse label map covers " << coarse->GetLargestPossibleRegion().GetSize()
                      << " voxels; expected the input's " << image->GetLargestPossibleRegion().GetSize());
  }
}

template <typename TInputImage, typename TLabelImage>
void
AGCLSegmentationFilter<TInputImage, TLabelImage>::GenerateInputRequestedRegion()
{
  Superclass::GenerateInputRequestedRegion();
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
AGCLSegmentationFilter<TInputImage, TLabelImage>::EnlargeOutputRequestedRegion(DataObject * output)
{
  Superclass::EnlargeOutputRequestedRegion(output);
  output->SetRequestedRegionToLargestPossibleRegion();
}

template <typename TInputImage, typename TLabelImage>
void
AGCLSegmentationFilter<TInputImage, TLabelImage>::LoadModelIfNeeded()
{
  if (m_Model.IsNotNull() && !m_ModelFromFile)
  {
    return; // set by SetModel
  }
  if (m_Model.IsNotNull() && m_LoadedFileName == m_ModelFileName)
  {
    return;
  }
  auto model = AGCLModelObject::New();
  model->Load(m_ModelFileName); // itk::ExceptionObject naming the file
  m_Model = model;
  m_ModelFromFile = true;
  m_LoadedFileName = m_ModelFileName;
}

template <typename TInputImage, typename TLabelImage>
void
AGCLSegmentationFilter<TInputImage, TLabelImage>::GenerateData()
{
  using namespace agcl_segmentation_detail;
  using Clock = std::chrono::steady_clock;
  using RegionType = typename LabelImageType::RegionType;
  m_StageSeconds = { { "coarse", 0.0 },  { "attention", 0.0 }, { "sampling", 0.0 },      { "encoder", 0.0 },
                     { "decoder", 0.0 }, { "fusion", 0.0 },    { "postprocessing", 0.0 } };
  m_NumberOfPatches = 0;
  auto timed = [this](const char * stage, auto && work) {
    const auto start = Clock::now();
    work();
    m_StageSeconds[stage] += std::chrono::duration<double>(Clock::now() - start).count();
  };
  auto checkAbort = [this] {
    if (this->GetAbortGenerateData())
    {
      ProcessAborted e(__FILE__, __LINE__);
      e.SetDescription("AGCLSegmentationFilter: aborted (AbortGenerateData)");
      throw e;
    }
  };

  this->UpdateProgress(0.0f);
  LoadModelIfNeeded();
  const agcl::ModelConfig & config = m_Model->GetConfig();
  if (config.image_dimensions != static_cast<int64_t>(ImageDimension))
  {
    itkExceptionMacro(<< "the model (" << (m_ModelFileName.empty() ? "set in memory" : m_ModelFileName) << ") is for "
                      << config.image_dimensions << "D images; the input is " << ImageDimension << "D"
                      << (config.image_dimensions == 2 ? " (2D pictures: itk::AGCLPictureSegmentationFilter)" : ""));
  }
  std::vector<LabelType> organs;
  for (const auto & organ : config.organs)
  {
    organs.push_back(static_cast<LabelType>(organ.label));
    if (static_cast<int64_t>(organs.back()) != organ.label)
    {
      itkExceptionMacro(<< "the model's organ label " << organ.label << " (" << organ.name
                        << ") does not fit the output's pixel type");
    }
  }

  // Local grafts: the mini-pipeline below reads the inputs' buffers without touching the outer pipeline.
  auto input = InputImageType::New();
  input->Graft(this->GetInput());
  VerifyFiniteImage(input.GetPointer(), "AGCLSegmentationFilter: the input image");
  typename LabelImageType::Pointer givenCoarse;
  if (const auto * coarse = this->GetCoarseLabelMap())
  {
    givenCoarse = LabelImageType::New();
    givenCoarse->Graft(coarse);
  }

  LabelImageType * output = this->GetOutput();
  output->SetBufferedRegion(output->GetRequestedRegion());
  output->Allocate();
  output->FillBuffer(LabelType{});
  m_Probability.clear();
  for (size_t o = 0; o < organs.size() && m_ProbabilityMaps; ++o)
  {
    auto map = ProbabilityImageType::New();
    map->CopyInformation(output);
    map->SetRegions(output->GetLargestPossibleRegion());
    map->Allocate();
    map->FillBuffer(0);
    m_Probability[organs[o]] = map;
  }
  auto newVolume = [&output] {
    auto volume = LabelImageType::New();
    volume->CopyInformation(output);
    volume->SetRegions(output->GetLargestPossibleRegion());
    volume->Allocate();
    volume->FillBuffer(LabelType{});
    return volume;
  };
  m_OrganReport = AGCLOrganReport{};
  // The fusion's score of each voxel's organ (one byte per voxel), for the organ report.
  using ScoreImageType = typename LabelFusionFilter<LabelImageType>::ScoreImageType;
  auto scores = ScoreImageType::New();
  scores->CopyInformation(output);
  scores->SetRegions(output->GetLargestPossibleRegion());
  scores->Allocate();
  scores->FillBuffer(0);
  m_CoarseOutput = nullptr;
  m_AttentionOutputs.clear();
  if (m_KeepCoarseOutputs)
  {
    m_CoarseOutput = newVolume();
    for (const LabelType organ : organs)
      m_AttentionOutputs[organ] = newVolume();
  }

  // 1. Coarse labels and attention seeds on the model's coarse grid (small), unless a coarse map was given.
  using Coarse = CoarseAttentionFilter<InputImageType, LabelImageType>;
  typename Coarse::CoarseResult coarseGrid;
  if (givenCoarse.IsNull())
  {
    timed("coarse", [&] { coarseGrid = Coarse::ComputeCoarse(input, m_Model, m_Device, config.coarse_weight > 0); });
  }
  ReleaseFreedMemory();
  this->UpdateProgress(0.1f);
  checkAbort();

  // 2. Slabs along the axial axis.
  using Sampler = QueryPatchSamplerFilter<InputImageType, LabelImageType>;
  const RegionType     region = input->GetLargestPossibleRegion();
  const unsigned int   axial = Sampler::AxialAxis(input->GetDirection());
  const IndexValueType first = region.GetIndex(axial);
  const auto           slices = static_cast<IndexValueType>(region.GetSize(axial));
  // The attention of a slab's voxel depends on organ voxels within the margin: grow the slab by it.
  const auto grow = static_cast<IndexValueType>(std::ceil(config.margin_mm / input->GetSpacing()[axial])) + 1;
  const auto thickness = static_cast<IndexValueType>(m_SlabThickness);
  // The slab's attention maps; with TensorStages, on one zeroed buffer per organ for all slabs
  // (only what a slab wrote is cleared before the next: no volume-sized work per organ and slab).
  std::vector<typename LabelImageType::Pointer> attention(organs.size());
  std::vector<std::vector<LabelType>>           attentionBuffers;
  std::vector<RegionType>                       written(organs.size());
  agcl::MarginWorkspace                         workspace; // the tensor stages' buffers, reused likewise
  if (m_TensorStages)
  {
    RegionType thickest = region;
    thickest.SetSize(axial, static_cast<SizeValueType>(std::min(thickness, slices)));
    attentionBuffers.assign(organs.size(), std::vector<LabelType>(thickest.GetNumberOfPixels(), LabelType{}));
  }

  // Encoder and decoder on chunks of patches, so that only one chunk's features exist at a time
  // (they are the largest per-patch data); the probabilities gathered on `where`.
  auto runNetworks =
    [&](const at::Tensor & images, const TensorDataObject::MetadataType & metadata, const c10::Device & where) {
      const int64_t           patches = images.size(0), chunk = 4 * static_cast<int64_t>(m_BatchSize);
      std::vector<at::Tensor> probabilities;
      for (int64_t a = 0; a < patches; a += chunk)
      {
        const int64_t b = std::min(patches, a + chunk);
        auto          part = TensorDataObject::New();
        part->SetTensor("image", images.slice(0, a, b));
        part->SetMetadata(TensorDataObject::MetadataType(metadata.begin() + a, metadata.begin() + b));
        auto encoder = AGCLEncoderFilter::New();
        encoder->SetInput(part);
        encoder->SetEncoder(m_Model->GetModel().Encoder());
        encoder->SetStemFeatures(m_Model->GetModel().Decoder()->UsesStem());
        encoder->SetDevice(m_Device);
        encoder->SetBatchSize(m_BatchSize);
        encoder->SetPrecision(m_Precision);
        timed("encoder", [&] { encoder->Update(); });
        checkAbort();
        auto decoder = ASPPDecoderFilter::New();
        decoder->SetInput(encoder->GetOutput());
        decoder->SetDecoder(m_Model->GetModel().Decoder());
        decoder->SetDevice(m_Device);
        decoder->SetBatchSize(m_BatchSize);
        decoder->SetPrecision(m_Precision);
        timed("decoder", [&] {
          decoder->Update();
          agclTorchTryMacro("AGCLSegmentationFilter",
                            probabilities.push_back(decoder->GetOutput()->GetTensor("probability").to(where)));
        });
        checkAbort();
      }
      return probabilities;
    };

  // The patch stages on the device (TensorPatchStages, or a CUDA device): the CT there once;
  // organs in label order (the fusion's order for ties); the coarse votes there once.
  const c10::Device   device = ConvertTorchErrors("Device", [this] { return agcl::ParseDevice(m_Device); });
  const bool          tensorPatchStages = m_TensorPatchStages || !device.is_cpu();
  std::vector<size_t> byLabel(organs.size());
  for (size_t o = 0; o < organs.size(); ++o)
    byLabel[o] = o;
  std::sort(byLabel.begin(), byLabel.end(), [&organs](size_t a, size_t b) { return organs[a] < organs[b]; });
  at::Tensor                    volume;
  std::vector<agcl::CoarseVote> votes;
  std::vector<double>           thresholds;
  if (tensorPatchStages)
  {
    for (const size_t o : byLabel)
      thresholds.push_back(config.organs[o].threshold ? *config.organs[o].threshold : config.threshold);
    const auto bufferSize = input->GetBufferedRegion().GetSize();
    volume = ConvertTorchErrors("AGCLSegmentationFilter: the CT on the device", [&] {
      return VolumeTensor(input->GetBufferPointer(),
                          { static_cast<int64_t>(bufferSize[2]),
                            static_cast<int64_t>(bufferSize[1]),
                            static_cast<int64_t>(bufferSize[0]) },
                          device);
    });
    if (givenCoarse.IsNull() && config.coarse_weight > 0)
    {
      votes.resize(organs.size());
      for (size_t j = 0; j < byLabel.size(); ++j)
      {
        const auto & coarse = *coarseGrid.probabilities[byLabel[j]];
        const auto   size = coarse.GetBufferedRegion().GetSize();
        votes[j].probability = ConvertTorchErrors("AGCLSegmentationFilter: the coarse vote on the device", [&] {
          return VolumeTensor(
            coarse.GetBufferPointer(),
            { static_cast<int64_t>(size[2]), static_cast<int64_t>(size[1]), static_cast<int64_t>(size[0]) },
            device);
        });
        votes[j].toCoarse = LabelFusionFilter<LabelImageType>::CoarseIndexMapping(coarse, *input);
        if (config.coarse_vote_scaled_to_peak) // the whole map's peak, as LabelFusionFilter
        {
          const float * value = coarse.GetBufferPointer();
          const float   peak = *std::max_element(value, value + coarse.GetBufferedRegion().GetNumberOfPixels());
          votes[j].scale = peak > 0.0f ? 1.0 / static_cast<double>(peak) : 1.0;
        }
      }
    }
  }

  // The query-patch sampler of a slab (its CT and the organs' attention maps over it), as the
  // model's configuration asks; both patch-stage paths plan their tiles with it. One sampler for
  // all slabs: its output's patch buffer is reused from slab to slab (fresh pages cost more than
  // the sampling on them).
  typename Sampler::Pointer slabSampler;
  auto                      SlabSampler = [&](const typename InputImageType::Pointer & ct) {
    if (slabSampler.IsNull())
      slabSampler = Sampler::New();
    const typename Sampler::Pointer & sampler = slabSampler;
    sampler->SetInput(ct);
    for (size_t o = 0; o < organs.size(); ++o)
      sampler->SetAttentionMap(organs[o], attention[o]);
    sampler->SetMode(Sampler::ModeEnum::Inference);
    sampler->SetPatchSize(static_cast<unsigned int>(config.patch_size));
    sampler->SetPatchSpacingMM(config.patch_spacing_mm);
    sampler->SetOverlap(config.overlap);
    sampler->SetWindowLow(config.window_low);
    sampler->SetWindowHigh(config.window_high);
    return sampler;
  };

  for (IndexValueType k0 = 0; k0 < slices; k0 += thickness)
  {
    const IndexValueType k1 = std::min(slices, k0 + thickness);
    RegionType           slab = region, grown = region;
    slab.SetIndex(axial, first + k0);
    slab.SetSize(axial, static_cast<SizeValueType>(k1 - k0));
    const IndexValueType g0 = std::max<IndexValueType>(0, k0 - grow), g1 = std::min(slices, k1 + grow);
    grown.SetIndex(axial, first + g0);
    grown.SetSize(axial, static_cast<SizeValueType>(g1 - g0));

    // Attention maps of the slab.
    bool anyAttention = false;
    timed("attention", [&] {
      typename LabelImageType::Pointer labels; // the ITK path's slab of a given map, or the kept coarse labels
      if (givenCoarse.IsNotNull() && !m_TensorStages)
        labels = ExtractRegion<LabelImageType>(givenCoarse, grown);
      else if (givenCoarse.IsNull() && m_KeepCoarseOutputs)
        labels = Coarse::ResampleLabels(coarseGrid.labels, input, slab);
      if (m_KeepCoarseOutputs)
      {
        // Organs only, as CoarseAttentionFilter's output 0 (other values of a given map are background).
        ImageRegionConstIterator<LabelImageType> in(
          givenCoarse.IsNotNull() ? givenCoarse.GetPointer() : labels.GetPointer(), slab);
        ImageRegionIterator<LabelImageType> out(m_CoarseOutput, slab);
        for (; !in.IsAtEnd(); ++in, ++out)
          out.Set(std::find(organs.begin(), organs.end(), in.Get()) == organs.end() ? LabelType{} : in.Get());
      }
      std::map<LabelType, RegionType> boxes;
      if (givenCoarse.IsNotNull())
        boxes = LabelBoundingBoxes(m_TensorStages ? givenCoarse.GetPointer() : labels.GetPointer(), grown);
      for (size_t o = 0; o < organs.size(); ++o)
      {
        if (m_TensorStages)
        {
          // The organ's slab buffer, cleared where the previous slab wrote, as an image over this slab.
          if (attention[o].IsNotNull() && written[o].GetNumberOfPixels() > 0)
            ForEachRow<LabelType>(attention[o].GetPointer(), written[o], [&](LabelType * row, int64_t, int64_t) {
              std::fill(row, row + written[o].GetSize(0), LabelType{});
            });
          written[o] = RegionType();
          attention[o] = LabelImageType::New();
          attention[o]->CopyInformation(input);
          attention[o]->SetRegions(slab);
          attention[o]->GetPixelContainer()->SetImportPointer(
            attentionBuffers[o].data(), slab.GetNumberOfPixels(), false);
          int64_t count = 0;
          if (givenCoarse.IsNull())
            count = Coarse::ComputeAttentionFromSeedTensor(
              coarseGrid.seeds[o], organs[o], input, grown, config.margin_mm, attention[o], &written[o], &workspace);
          else if (const auto found = boxes.find(organs[o]); found != boxes.end())
            count = Coarse::ComputeAttentionMapTensor(
              givenCoarse, organs[o], found->second, grown, config.margin_mm, attention[o], &written[o], &workspace);
          anyAttention = anyAttention || count > 0;
        }
        else
        {
          attention[o] = LabelImageType::New();
          attention[o]->CopyInformation(input);
          attention[o]->SetRegions(slab);
          attention[o]->Allocate();
          attention[o]->FillBuffer(LabelType{});
          if (givenCoarse.IsNull())
          {
            Coarse::ComputeAttentionFromSeed(
              coarseGrid.seeds[o], organs[o], input, grown, config.margin_mm, attention[o]);
          }
          else if (const auto found = boxes.find(organs[o]); found != boxes.end())
          {
            Coarse::ComputeAttentionMap(labels, organs[o], found->second, config.margin_mm, attention[o]);
          }
          const LabelType * buffer = attention[o]->GetBufferPointer();
          anyAttention = anyAttention || std::any_of(buffer, buffer + slab.GetNumberOfPixels(), [](LabelType v) {
                           return v != LabelType{};
                         });
        }
        if (m_KeepCoarseOutputs)
          ImageAlgorithm::Copy(attention[o].GetPointer(), m_AttentionOutputs.at(organs[o]).GetPointer(), slab, slab);
      }
    });
    if (anyAttention && tensorPatchStages)
    {
      // The slab's CT as an image (geometry only: PlanPatches and the fusion's frames read its
      // information and the attention maps, not its pixels, which are on the device).
      const typename InputImageType::Pointer ct = ExtractRegion<InputImageType>(input, slab);
      const std::array<int64_t, 3>           zyx{ static_cast<int64_t>(slab.GetSize(2)),
                                        static_cast<int64_t>(slab.GetSize(1)),
                                        static_cast<int64_t>(slab.GetSize(0)) };
      const std::array<int64_t, 3>           slabStart{ slab.GetIndex(0), slab.GetIndex(1), slab.GetIndex(2) };
      const auto                             sampler = SlabSampler(ct);
      typename Sampler::PatchPlan            plan;
      at::Tensor                             masks, images;
      std::vector<agcl::VoxelBox>            boxes(organs.size());
      timed("sampling", [&] {
        plan = sampler->PlanPatches(); // organ = the position in label order, as byLabel
        std::vector<at::Tensor> parts;
        for (size_t j = 0; j < byLabel.size(); ++j)
        {
          const size_t o = byLabel[j];
          parts.push_back(MaskTensor(attention[o]->GetBufferPointer(), zyx));
          const auto found = LabelBoundingBoxes(attention[o].GetPointer(), slab, true);
          if (!found.empty())
            for (unsigned int i = 0; i < 3; ++i)
            {
              boxes[j].start[i] = found.begin()->second.GetIndex(i);
              boxes[j].size[i] = static_cast<int64_t>(found.begin()->second.GetSize(i));
            }
        }
        agclTorchTryMacro("AGCLSegmentationFilter", masks = at::stack(parts).to(device));
        const int64_t axialDim = 2 - static_cast<int64_t>(axial);
        agclTorchTryMacro("AGCLSegmentationFilter",
                          images = agcl::SampleQueryPatches(
                            volume.narrow(axialDim, slab.GetIndex(axial) - region.GetIndex(axial), zyx[axialDim]),
                            masks,
                            plan.frames,
                            config.patch_size,
                            config.window_low,
                            config.window_high,
                            slabStart));
      });
      const int64_t patches = static_cast<int64_t>(plan.frames.size());
      m_NumberOfPatches += static_cast<SizeValueType>(patches);
      checkAbort();
      if (patches > 0)
      {
        std::vector<at::Tensor> probabilities = runNetworks(images, plan.metadata, device); // on the device
        timed("fusion", [&] {
          std::vector<agcl::PatchFrame> frames = LabelFusionFilter<LabelImageType>::PatchFrames(*ct, plan.metadata);
          for (size_t n = 0; n < frames.size(); ++n)
            frames[n].organ = plan.frames[n].organ;
          agcl::FusionOptions options;
          options.gaussianWeighting = m_GaussianWeighting;
          // The slab's tiles share their axes and spacing: the first one's steps hold for all.
          options.subdivisions = { LabelFusionFilter<LabelImageType>::Subdivisions(frames[0].column),
                                   LabelFusionFilter<LabelImageType>::Subdivisions(frames[0].row) };
          options.coarseWeight = votes.empty() ? 0.0 : config.coarse_weight;
          at::Tensor labels, score;
          agclTorchTryMacro("AGCLSegmentationFilter", {
            const at::Tensor probability = at::cat(probabilities);
            probabilities.clear();
            const std::vector<at::Tensor> scored = agcl::FusePatchScores(probability, frames, boxes, options, votes);
            const agcl::SlabDecision      decision = agcl::DecideLabels(scored, boxes, masks, thresholds, slabStart);
            labels = decision.labels.to(at::kCPU).contiguous();
            score = decision.score.to(at::kCPU).contiguous();
            for (size_t j = 0; j < byLabel.size() && m_ProbabilityMaps; ++j)
            {
              const at::Tensor map =
                agcl::QuantisedProbability(scored[j], boxes[j], masks[j], slabStart).to(at::kCPU).contiguous();
              const uint8_t *                           value = map.data_ptr<uint8_t>();
              ImageRegionIterator<ProbabilityImageType> out(m_Probability.at(organs[byLabel[j]]), slab);
              for (; !out.IsAtEnd(); ++out, ++value)
                out.Set(*value);
            }
          });
          // Organ positions (label order) back to labels; slab voxels in buffer order (x fastest).
          const int32_t *                     label = labels.data_ptr<int32_t>();
          const uint8_t *                     s8 = score.data_ptr<uint8_t>();
          ImageRegionIterator<LabelImageType> out(output, slab);
          ImageRegionIterator<ScoreImageType> outScore(scores, slab);
          for (; !out.IsAtEnd(); ++out, ++outScore, ++label, ++s8)
          {
            out.Set(*label > 0 ? organs[byLabel[static_cast<size_t>(*label - 1)]] : LabelType{});
            outScore.Set(*s8);
          }
        });
      }
    }
    else if (anyAttention)
    {
      const typename InputImageType::Pointer ct = ExtractRegion<InputImageType>(input, slab);
      const auto                             sampler = SlabSampler(ct);
      timed("sampling", [&] { sampler->Update(); });
      const SizeValueType patches = static_cast<SizeValueType>(sampler->GetOutput()->GetNumberOfItems());
      m_NumberOfPatches += patches;
      checkAbort();

      if (patches > 0)
      {
        const TensorDataObject * sampled = sampler->GetOutput();
        const auto &             metadata = sampled->GetMetadata();
        std::vector<at::Tensor>  probabilities = runNetworks(sampled->GetTensor("image"), metadata, at::kCPU);
        auto                     fused = TensorDataObject::New();
        fused->SetMetadata(metadata);
        agclTorchTryMacro("AGCLSegmentationFilter", fused->SetTensor("probability", at::cat(probabilities)));
        probabilities.clear();

        timed("fusion", [&] {
          auto fusion = LabelFusionFilter<LabelImageType>::New();
          fusion->SetPatches(fused);
          fusion->SetReferenceImage(ct);
          for (size_t o = 0; o < organs.size(); ++o)
          {
            fusion->SetAttentionMap(organs[o], attention[o]);
          }
          fusion->SetThreshold(config.threshold);
          for (size_t o = 0; o < organs.size(); ++o)
            if (config.organs[o].threshold)
              fusion->SetOrganThreshold(organs[o], *config.organs[o].threshold);
          // The coarse network's vote (a given coarse map has no probabilities; with weight 0
          // they were not kept).
          if (givenCoarse.IsNull() && config.coarse_weight > 0)
          {
            fusion->SetCoarseWeight(config.coarse_weight);
            fusion->SetCoarseVoteScaledToPeak(config.coarse_vote_scaled_to_peak);
            for (size_t o = 0; o < organs.size(); ++o)
              fusion->SetCoarseProbabilityMap(organs[o], coarseGrid.probabilities[o]);
          }
          fusion->SetGaussianWeighting(m_GaussianWeighting);
          fusion->PostProcessingOff(); // done once on the whole volume below
          fusion->SetProbabilityMaps(m_ProbabilityMaps);
          fusion->ScoreMapOn();
          fusion->Update();
          ImageAlgorithm::Copy(fusion->GetOutput(), output, slab, slab);
          ImageAlgorithm::Copy(fusion->GetScoreImage(), scores.GetPointer(), slab, slab);
          for (size_t o = 0; o < organs.size() && m_ProbabilityMaps; ++o)
          {
            // Quantised to 0..255 (probability x 255, rounded): one byte per voxel and organ.
            ImageRegionConstIterator<typename LabelFusionFilter<LabelImageType>::ProbabilityImageType> in(
              fusion->GetProbabilityMap(organs[o]), slab);
            ImageRegionIterator<ProbabilityImageType> out(m_Probability.at(organs[o]), slab);
            for (; !in.IsAtEnd(); ++in, ++out)
              out.Set(static_cast<unsigned char>(std::lround(std::clamp(in.Get(), 0.0f, 1.0f) * 255.0f)));
          }
        });
      }
    }
    this->UpdateProgress(static_cast<float>(0.1 + 0.85 * static_cast<double>(k1) / static_cast<double>(slices)));
    checkAbort();
  }

  slabSampler = nullptr; // the last slab's CT, maps and patches, before the final trim

  // 3. Post-processing on the whole label map (each organ on its own bounding box).
  if (m_PostProcessing)
  {
    timed("postprocessing",
          [&] { LabelFusionFilter<LabelImageType>::KeepLargestComponentsAndFillHoles(output, organs); });
  }
  std::vector<std::pair<int64_t, std::string>> named;
  for (const auto & organ : config.organs)
    named.emplace_back(organ.label, organ.name);
  m_OrganReport = MakeOrganReport(static_cast<const LabelImageType *>(output), scores.GetPointer(), named);
  if (!config.statistics.empty()) // the model's own validation statistics: plausibility warnings
    CheckAGCLStatistics(m_OrganReport, config.statistics, WindowedHistogramFor(input.GetPointer(), config.statistics));
  ReleaseFreedMemory();
  this->UpdateProgress(1.0f);
}

template <typename TInputImage, typename TLabelImage>
void
AGCLSegmentationFilter<TInputImage, TLabelImage>::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "ModelFileName: " << m_ModelFileName << std::endl;
  os << indent << "Model: " << (m_Model.IsNull() ? "none" : (m_ModelFromFile ? "loaded from file" : "set"))
     << std::endl;
  os << indent << "Device: " << m_Device << std::endl;
  os << indent << "BatchSize: " << m_BatchSize << std::endl;
  os << indent << "SlabThickness: " << m_SlabThickness << std::endl;
  os << indent << "GaussianWeighting: " << m_GaussianWeighting << std::endl;
  os << indent << "PostProcessing: " << m_PostProcessing << std::endl;
  os << indent << "ProbabilityMaps: " << m_ProbabilityMaps << std::endl;
  os << indent << "KeepCoarseOutputs: " << m_KeepCoarseOutputs << std::endl;
  os << indent << "TensorStages: " << m_TensorStages << std::endl;
  os << indent << "TensorPatchStages: " << m_TensorPatchStages << std::endl;
  os << indent << "Precision: " << m_Precision << std::endl;
  os << indent << "LoadedFileName: " << m_LoadedFileName << std::endl;
  os << indent << "NumberOfPatches: " << m_NumberOfPatches << std::endl;
}

} // namespace itk

#endif
