/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkLabelFusionFilter_hxx
#define itkLabelFusionFilter_hxx

#include "itkLabelFusionFilter.h"
#include "itkConvertTorchErrors.h"

#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkImageRegionIterator.h"
#include "itkLabelBoundingBoxes.h"
#include "itkLabelComponents.h"

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cmath>

namespace itk {

template <typename TLabelImage>
LabelFusionFilter<TLabelImage>::LabelFusionFilter()
{
  this->AddRequiredInputName("Patches");
  this->AddRequiredInputName("Reference");
}

template <typename TLabelImage>
void
LabelFusionFilter<TLabelImage>::SetPatches(const TensorDataObject * patches)
{
  this->ProcessObject::SetInput("Patches", const_cast<TensorDataObject *>(patches));
}

template <typename TLabelImage>
void
LabelFusionFilter<TLabelImage>::SetReferenceImage(const ReferenceType * reference)
{
  this->ProcessObject::SetInput("Reference", const_cast<ReferenceType *>(reference));
}

template <typename TLabelImage>
void
LabelFusionFilter<TLabelImage>::SetAttentionMap(LabelType organ, const LabelImageType * attention)
{
  if (organ == LabelType{})
  {
    itkExceptionMacro(<< "SetAttentionMap: organ label 0 is background");
  }
  const std::string name = "Attention" + std::to_string(static_cast<long long>(organ));
  if (attention == nullptr) // as ITK's SetInput(nullptr): the organ's map is removed
  {
    m_Attention.erase(organ);
    this->RemoveInput(name);
  }
  else
  {
    this->AddOptionalInputName(name);
    this->ProcessObject::SetInput(name, const_cast<LabelImageType *>(attention));
    m_Attention[organ] = attention;
  }
  this->Modified();
}

template <typename TLabelImage>
void
LabelFusionFilter<TLabelImage>::SetCoarseProbabilityMap(LabelType organ, const ProbabilityImageType * probability)
{
  if (organ == LabelType{})
  {
    itkExceptionMacro(<< "SetCoarseProbabilityMap: organ label 0 is background");
  }
  if (probability == nullptr)
  {
    m_CoarseProbability.erase(organ);
  }
  else
  {
    m_CoarseProbability[organ] = probability;
  }
  this->Modified();
}

template <typename TLabelImage>
void
LabelFusionFilter<TLabelImage>::SetOrganThreshold(LabelType organ, double threshold)
{
  if (organ == LabelType{})
  {
    itkExceptionMacro(<< "SetOrganThreshold: organ label 0 is background");
  }
  if (!(threshold >= 0.0 && threshold <= 1.0))
  {
    itkExceptionMacro(<< "SetOrganThreshold: threshold " << threshold << " of organ " << static_cast<double>(organ)
                      << ": expected a probability in 0..1");
  }
  m_OrganThreshold[organ] = threshold;
  this->Modified();
}

template <typename TLabelImage>
double
LabelFusionFilter<TLabelImage>::GetOrganThreshold(LabelType organ) const
{
  const auto it = m_OrganThreshold.find(organ);
  return it == m_OrganThreshold.end() ? m_Threshold : it->second;
}

template <typename TLabelImage>
void
LabelFusionFilter<TLabelImage>::ClearOrganThresholds()
{
  if (!m_OrganThreshold.empty())
  {
    m_OrganThreshold.clear();
    this->Modified();
  }
}

template <typename TLabelImage>
const TensorDataObject *
LabelFusionFilter<TLabelImage>::GetPatches() const
{
  return dynamic_cast<const TensorDataObject *>(this->ProcessObject::GetInput("Patches"));
}

template <typename TLabelImage>
auto
LabelFusionFilter<TLabelImage>::GetReference() const -> const ReferenceType *
{
  return dynamic_cast<const ReferenceType *>(this->ProcessObject::GetInput("Reference"));
}

template <typename TLabelImage>
auto
LabelFusionFilter<TLabelImage>::GetProbabilityMap(LabelType organ) const -> const ProbabilityImageType *
{
  const auto it = m_Probability.find(organ);
  if (it == m_Probability.end())
  {
    itkExceptionMacro(<< "no probability map for organ " << static_cast<double>(organ)
                      << " (not fused yet, not an organ, or ProbabilityMaps off)");
  }
  return it->second;
}

template <typename TLabelImage>
auto
LabelFusionFilter<TLabelImage>::GetScoreImage() const -> const ScoreImageType *
{
  if (m_Score.IsNull())
  {
    itkExceptionMacro(<< "no score map (not fused yet, or ScoreMap off)");
  }
  return m_Score;
}

template <typename TLabelImage>
void
LabelFusionFilter<TLabelImage>::BlendCoarseProbability(const ProbabilityImageType &                coarse,
                                                       const ReferenceType &                       reference,
                                                       const typename LabelImageType::RegionType & box,
                                                       double                                      weight,
                                                       double                                      scale,
                                                       std::vector<float> &                        scores)
{
  // Voxel index -> the coarse grid's continuous index is affine: c = M index + t, with
  // M = D_c^-1 S_c^-1 D S and t = D_c^-1 S_c^-1 (origin - origin_c) (S: spacings, D: directions).
  constexpr unsigned int N = ImageDimension;
  double                 M[N][N], t[N];
  const auto             inverse = coarse.GetInverseDirection();
  for (unsigned int i = 0; i < N; ++i)
  {
    t[i] = 0.0;
    for (unsigned int k = 0; k < N; ++k)
    {
      const double toCoarse = inverse(i, k) / coarse.GetSpacing()[i];
      t[i] += toCoarse * (reference.GetOrigin()[k] - coarse.GetOrigin()[k]);
      for (unsigned int j = 0; j < N; ++j)
      {
        if (k == 0)
          M[i][j] = 0.0;
        M[i][j] += toCoarse * reference.GetDirection()(k, j) * reference.GetSpacing()[j];
      }
    }
  }
  const auto     size = coarse.GetLargestPossibleRegion().GetSize();
  const auto     start = coarse.GetLargestPossibleRegion().GetIndex();
  const float *  buffer = coarse.GetBufferPointer();
  IndexValueType stride[N];
  stride[0] = 1;
  for (unsigned int i = 1; i < N; ++i)
    stride[i] = stride[i - 1] * static_cast<IndexValueType>(size[i - 1]);
  const auto w = static_cast<float>(weight);
  auto       index = box.GetIndex();
  for (size_t v = 0, count = box.GetNumberOfPixels(); v < count; ++v)
  {
    if (v > 0) // the next voxel of the box, x fastest (the accumulators' order)
    {
      for (unsigned int i = 0; i < N; ++i)
      {
        if (++index[i] < box.GetIndex(i) + static_cast<IndexValueType>(box.GetSize(i)))
          break;
        index[i] = box.GetIndex(i);
      }
    }
    // Multilinear interpolation, the continuous index clamped to the grid (edge values beyond it).
    IndexValueType low[N];
    double         fraction[N];
    for (unsigned int i = 0; i < N; ++i)
    {
      double c = t[i];
      for (unsigned int j = 0; j < N; ++j)
        c += M[i][j] * static_cast<double>(index[j]);
      c = std::clamp(c - static_cast<double>(start[i]), 0.0, static_cast<double>(size[i] - 1));
      low[i] = static_cast<IndexValueType>(std::floor(c)); // <= size - 1 after the clamp
      fraction[i] = c - static_cast<double>(low[i]);
    }
    double value = 0.0;
    for (unsigned int corner = 0; corner < (1u << N); ++corner)
    {
      double         factor = 1.0;
      IndexValueType offset = 0;
      for (unsigned int i = 0; i < N; ++i)
      {
        const bool           up = (corner >> i) & 1u;
        const IndexValueType at = std::min(low[i] + (up ? 1 : 0), static_cast<IndexValueType>(size[i]) - 1);
        factor *= up ? fraction[i] : 1.0 - fraction[i];
        offset += at * stride[i];
      }
      if (factor != 0.0)
        value += factor * static_cast<double>(buffer[offset]);
    }
    scores[v] = (1.0f - w) * scores[v] + w * static_cast<float>(scale * value);
  }
}

template <typename TLabelImage>
void
LabelFusionFilter<TLabelImage>::VerifyPreconditions() ITKv5_CONST
{
  Superclass::VerifyPreconditions();
  if (!(m_Threshold >= 0.0 && m_Threshold <= 1.0))
  {
    itkExceptionMacro(<< "Threshold " << m_Threshold << ": expected a probability in 0..1");
  }
  for (const auto & entry : m_OrganThreshold)
  {
    if (m_Attention.find(entry.first) == m_Attention.end())
    {
      itkExceptionMacro(<< "a threshold for organ " << static_cast<double>(entry.first)
                        << ", which has no attention map");
    }
  }
  if (!(m_CoarseWeight >= 0.0 && m_CoarseWeight <= 1.0))
  {
    itkExceptionMacro(<< "CoarseWeight " << m_CoarseWeight << ": expected a weight in 0..1");
  }
  for (const auto & entry : m_CoarseProbability)
  {
    if (m_Attention.find(entry.first) == m_Attention.end())
    {
      itkExceptionMacro(<< "a coarse probability map for organ " << static_cast<double>(entry.first)
                        << ", which has no attention map");
    }
    if (entry.second->GetBufferedRegion().GetNumberOfPixels() == 0 ||
        entry.second->GetBufferedRegion() != entry.second->GetLargestPossibleRegion())
    {
      itkExceptionMacro(<< "the coarse probability map of organ " << static_cast<double>(entry.first)
                        << " is empty or not buffered whole");
    }
    const float * value = entry.second->GetBufferPointer();
    const auto    count = entry.second->GetBufferedRegion().GetNumberOfPixels();
    const auto    bad = std::find_if(value, value + count, [](float p) { return !(p >= 0.0f && p <= 1.0f); });
    if (bad != value + count)
    {
      itkExceptionMacro(<< "the coarse probability map of organ " << static_cast<double>(entry.first) << " has " << *bad
                        << " at buffer offset " << (bad - value) << ": expected probabilities in 0..1");
    }
  }
  if (m_Attention.empty())
  {
    itkExceptionMacro(<< "no attention maps: call SetAttentionMap(organ, map) for each organ");
  }
}

template <typename TLabelImage>
void
LabelFusionFilter<TLabelImage>::VerifyInputInformation() ITKv5_CONST
{
  const ReferenceType * reference = this->GetReference();
  for (const auto & entry : m_Attention)
  {
    const auto * map = entry.second.GetPointer();
    if (map->GetLargestPossibleRegion() != reference->GetLargestPossibleRegion() ||
        !map->GetSpacing().GetVnlVector().is_equal(reference->GetSpacing().GetVnlVector(), 1e-6) ||
        !map->GetOrigin().GetVnlVector().is_equal(reference->GetOrigin().GetVnlVector(), 1e-6) ||
        !map->GetDirection().GetVnlMatrix().is_equal(reference->GetDirection().GetVnlMatrix(), 1e-6))
    {
      itkExceptionMacro(<< "the attention map of organ " << static_cast<double>(entry.first)
                        << " does not have the reference image's geometry");
    }
  }
}

template <typename TLabelImage>
void
LabelFusionFilter<TLabelImage>::GenerateOutputInformation()
{
  const ReferenceType * reference = this->GetReference();
  LabelImageType *      output = this->GetOutput();
  output->SetLargestPossibleRegion(reference->GetLargestPossibleRegion());
  output->SetSpacing(reference->GetSpacing());
  output->SetOrigin(reference->GetOrigin());
  output->SetDirection(reference->GetDirection());
}

template <typename TLabelImage>
void
LabelFusionFilter<TLabelImage>::GenerateInputRequestedRegion()
{
  Superclass::GenerateInputRequestedRegion();
  for (const auto & entry : m_Attention)
  {
    const_cast<LabelImageType *>(entry.second.GetPointer())->SetRequestedRegionToLargestPossibleRegion();
  }
}

template <typename TLabelImage>
std::vector<agcl::PatchFrame>
LabelFusionFilter<TLabelImage>::PatchFrames(const ReferenceType &                  reference,
                                            const TensorDataObject::MetadataType & metadata)
{
  static_assert(ImageDimension == 3, "PatchFrames: 3-D images");
  const auto inverseDirection = reference.GetInverseDirection();
  const auto spacing = reference.GetSpacing();
  const auto origin = reference.GetOrigin();
  auto       toIndex = [&](unsigned int i, unsigned int d) { return inverseDirection(i, d) / spacing[i]; };
  std::vector<agcl::PatchFrame> frames(metadata.size());
  for (size_t n = 0; n < metadata.size(); ++n)
  {
    const auto & m = metadata[n];
    // As GenerateData: c0, dq and dr summed over d in order.
    for (unsigned int i = 0; i < 3; ++i)
    {
      double c0 = 0.0, dq = 0.0, dr = 0.0;
      for (unsigned int d = 0; d < 3; ++d)
      {
        c0 += toIndex(i, d) * (m.origin[d] - origin[d]);
        dq += toIndex(i, d) * m.spacing[0] * m.axes[d];
        dr += toIndex(i, d) * m.spacing[1] * m.axes[3 + d];
      }
      frames[n].first[i] = c0;
      frames[n].column[i] = dq;
      frames[n].row[i] = dr;
    }
  }
  return frames;
}

template <typename TLabelImage>
int64_t
LabelFusionFilter<TLabelImage>::Subdivisions(const std::array<double, 3> & step)
{
  const double length = std::sqrt(step[0] * step[0] + step[1] * step[1] + step[2] * step[2]);
  if (!std::isfinite(length) || length > 64.0)
  {
    itkGenericExceptionMacro(<< "LabelFusionFilter: a patch pixel spans " << length
                             << " voxels; expected a finite step of at most 64 voxels (check the patches' spacing)");
  }
  // A step within 0.1% of a voxel (e.g. a float-rounded copy of the voxel spacing) is not longer.
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(length - 1e-3)));
}

template <typename TLabelImage>
std::array<std::array<double, 4>, 3>
LabelFusionFilter<TLabelImage>::CoarseIndexMapping(const ProbabilityImageType & coarse, const ReferenceType & reference)
{
  static_assert(ImageDimension == 3, "CoarseIndexMapping: 3-D images");
  std::array<std::array<double, 4>, 3> map{};
  const auto                           inverse = coarse.GetInverseDirection();
  const auto                           start = coarse.GetLargestPossibleRegion().GetIndex();
  for (unsigned int i = 0; i < 3; ++i)
  {
    // BlendCoarseProbability's loops: t and M summed over k in order.
    double t = 0.0, M[3] = { 0.0, 0.0, 0.0 };
    for (unsigned int k = 0; k < 3; ++k)
    {
      const double toCoarse = inverse(i, k) / coarse.GetSpacing()[i];
      t += toCoarse * (reference.GetOrigin()[k] - coarse.GetOrigin()[k]);
      for (unsigned int j = 0; j < 3; ++j)
        M[j] += toCoarse * reference.GetDirection()(k, j) * reference.GetSpacing()[j];
    }
    map[i] = { M[0], M[1], M[2], t - static_cast<double>(start[i]) };
  }
  return map;
}

template <typename TLabelImage>
void
LabelFusionFilter<TLabelImage>::GenerateData()
{
  const TensorDataObject * patches = this->GetPatches();
  const ReferenceType *    reference = this->GetReference();
  LabelImageType *         output = this->GetOutput();
  const auto               region = reference->GetLargestPossibleRegion();
  output->SetBufferedRegion(region);
  output->Allocate();
  output->FillBuffer(LabelType{});

  const at::Tensor probability = ConvertTorchErrors("LabelFusionFilter: reading the probabilities", [patches] {
    return patches->GetTensor("probability").detach().to(at::kCPU).to(at::kFloat).contiguous();
  });
  const auto &     metadata = patches->GetMetadata();
  if (probability.dim() != 4 || probability.size(1) != 1 || probability.size(2) != probability.size(3) ||
      probability.size(0) != static_cast<int64_t>(metadata.size()))
  {
    itkExceptionMacro(<< "expected \"probability\" [N, 1, P, P] with N = " << metadata.size() << " metadata entries");
  }
  const int64_t P = probability.size(2);
  const float * prob = probability.data_ptr<float>();
  const size_t  count = region.GetNumberOfPixels();
  using IndexType = typename LabelImageType::IndexType;
  using RegionType = typename LabelImageType::RegionType;

  // Per organ, sums and weights only over the bounding box of its attention map: a voxel
  // outside it can never take the organ, and the boxes are much smaller than the volume.
  struct Accumulator
  {
    RegionType         box;
    std::vector<float> sum, weight;
    double             threshold = 0.5; // the organ's own, or m_Threshold
    size_t
    Offset(const IndexType & index) const
    {
      size_t offset = 0;
      for (int d = ImageDimension - 1; d >= 0; --d)
        offset = offset * box.GetSize(d) + static_cast<size_t>(index[d] - box.GetIndex(d));
      return offset;
    }
  };
  std::map<LabelType, Accumulator> accumulators;
  for (const auto & [organ, attention] : m_Attention)
  {
    Accumulator & a = accumulators[organ];
    a.threshold = this->GetOrganThreshold(organ);
    const auto boxes = LabelBoundingBoxes(attention.GetPointer(), region, true);
    if (!boxes.empty())
    {
      a.box = boxes.begin()->second;
      a.sum.assign(a.box.GetNumberOfPixels(), 0.0f);
      a.weight.assign(a.box.GetNumberOfPixels(), 0.0f);
    }
  }

  const double       sigma = P / 4.0;
  std::vector<float> pixelWeight(static_cast<size_t>(P * P), 1.0f);
  if (m_GaussianWeighting)
  {
    for (int64_t r = 0; r < P; ++r)
      for (int64_t q = 0; q < P; ++q)
        pixelWeight[r * P + q] = static_cast<float>(
          std::exp(-((q - P / 2.0) * (q - P / 2.0) + (r - P / 2.0) * (r - P / 2.0)) / (2 * sigma * sigma)));
  }
  // Physical point -> continuous index is affine: pixel (q, r) of a patch maps to
  // c0 + q dq + r dr, rounded half up (as TransformPhysicalPointToIndex does).
  const auto inverseDirection = reference->GetInverseDirection();
  const auto spacing = reference->GetSpacing();
  // Patch pixels coarser than the voxels would leave voxels that no pixel centre falls in:
  // each pixel is split into k_q x k_r sub-pixels (Subdivisions: k = ceil(the length in voxels
  // of a one-pixel step along the patch's columns, or rows), 1 when it is not longer than a
  // voxel), each carrying the pixel's value with 1/(k_q k_r) of its weight.
  const auto origin = reference->GetOrigin();
  auto       toIndex = [&](unsigned int i, unsigned int d) { return inverseDirection(i, d) / spacing[i]; };
  // Patches grouped by organ; organs (separate accumulators) are fused in parallel.
  std::vector<LabelType>                   organOrder;
  std::map<LabelType, std::vector<size_t>> patchesOf;
  for (size_t n = 0; n < metadata.size(); ++n)
  {
    const auto &    m = metadata[n];
    const LabelType organ = static_cast<LabelType>(m.organ);
    if (accumulators.find(organ) == accumulators.end() || static_cast<int>(organ) != m.organ)
    {
      itkExceptionMacro(<< "patch " << n << " belongs to organ " << m.organ << ", which has no attention map");
    }
    if (patchesOf[organ].empty())
      organOrder.push_back(organ);
    patchesOf[organ].push_back(n);
  }
  // One organ's patches summed into its box (weights and weighted probabilities).
  auto AccumulatePatches = [&](Accumulator & a, LabelType organ) {
    for (const size_t n : patchesOf.at(organ))
    {
      const auto & m = metadata[n];
      double       c0[ImageDimension], dq[ImageDimension], dr[ImageDimension];
      for (unsigned int i = 0; i < ImageDimension; ++i)
      {
        c0[i] = dq[i] = dr[i] = 0.0;
        for (unsigned int d = 0; d < ImageDimension && d < 3; ++d)
        {
          c0[i] += toIndex(i, d) * (m.origin[d] - origin[d]);
          dq[i] += toIndex(i, d) * m.spacing[0] * m.axes[d];
          dr[i] += toIndex(i, d) * m.spacing[1] * m.axes[3 + d];
        }
      }
      const float *         patch = prob + n * P * P;
      std::array<double, 3> stepQ{}, stepR{};
      for (unsigned int i = 0; i < ImageDimension && i < 3; ++i)
      {
        stepQ[i] = dq[i];
        stepR[i] = dr[i];
      }
      const int64_t kq = Subdivisions(stepQ), kr = Subdivisions(stepR);
      const float   share = 1.0f / static_cast<float>(kq * kr);
      bool          aligned = kq == 1 && kr == 1 && dq[1] == 0.0 && dr[0] == 0.0;
      for (unsigned int i = 2; i < ImageDimension; ++i)
        aligned = aligned && dq[i] == 0.0 && dr[i] == 0.0;
      if (aligned)
      {
        // Columns move index 0 only and rows index 1 only (u = q and v = r exactly when k = 1, and
        // the terms along the other axes are zero): each column's and each row's voxel is found
        // once, with the arithmetic of the general loop below, so the same voxels in the same order.
        auto voxel = [&](unsigned int i, double coordinate, IndexValueType & offset) {
          const auto index = static_cast<IndexValueType>(std::floor(coordinate + 0.5));
          offset = index - a.box.GetIndex(i);
          return index >= a.box.GetIndex(i) &&
                 index < a.box.GetIndex(i) + static_cast<IndexValueType>(a.box.GetSize(i));
        };
        IndexValueType high = 0, at = 0;
        bool           inside = true;
        for (int i = static_cast<int>(ImageDimension) - 1; i >= 2; --i)
        {
          inside = voxel(i, c0[i], at) && inside;
          high = high * static_cast<IndexValueType>(a.box.GetSize(i)) + at;
        }
        if (!inside)
          continue;
        std::vector<IndexValueType> column(P, -1), row(P, -1);
        for (int64_t q = 0; q < P; ++q)
          if (!voxel(0, c0[0] + q * dq[0], column[q]))
            column[q] = -1;
        for (int64_t r = 0; r < P; ++r)
          if (voxel(1, c0[1] + r * dr[1], at))
            row[r] = (high * static_cast<IndexValueType>(a.box.GetSize(1)) + at) *
                     static_cast<IndexValueType>(a.box.GetSize(0));
        for (int64_t r = 0; r < P; ++r)
        {
          if (row[r] < 0)
            continue;
          for (int64_t q = 0; q < P; ++q)
          {
            if (column[q] < 0)
              continue;
            const size_t offset = static_cast<size_t>(row[r] + column[q]);
            const float  w = share * pixelWeight[r * P + q];
            a.sum[offset] += w * patch[r * P + q];
            a.weight[offset] += w;
          }
        }
        continue;
      }
      for (int64_t r = 0; r < P; ++r)
        for (int64_t q = 0; q < P; ++q)
          for (int64_t b = 0; b < kr; ++b)
            for (int64_t a2 = 0; a2 < kq; ++a2)
            {
              // Sub-pixel centre in patch pixel units (the pixel centre itself when k = 1).
              const double u = q - 0.5 + (a2 + 0.5) / static_cast<double>(kq);
              const double v = r - 0.5 + (b + 0.5) / static_cast<double>(kr);
              IndexType    index;
              bool         inside = true;
              for (unsigned int i = 0; i < ImageDimension && inside; ++i)
              {
                index[i] = static_cast<IndexValueType>(std::floor(c0[i] + u * dq[i] + v * dr[i] + 0.5));
                inside = index[i] >= a.box.GetIndex(i) &&
                         index[i] < a.box.GetIndex(i) + static_cast<IndexValueType>(a.box.GetSize(i));
              }
              if (!inside)
                continue;
              const size_t offset = a.Offset(index);
              const float  w = share * pixelWeight[r * P + q];
              a.sum[offset] += w * patch[r * P + q];
              a.weight[offset] += w;
            }
    }
  };
  auto fuseOrgan = [&](SizeValueType which) {
    const LabelType organ = organOrder[which];
    Accumulator &   a = accumulators.at(organ);
    if (a.sum.empty())
      return; // empty attention: nothing can be labelled
    AccumulatePatches(a, organ);
    // The weighted mean, on this organ's thread.
    for (size_t v = 0; v < a.sum.size(); ++v)
      a.sum[v] = a.weight[v] > 0 ? a.sum[v] / a.weight[v] : 0.0f;
    std::vector<float>().swap(a.weight);
  };
  this->GetMultiThreader()->ParallelizeArray(0, static_cast<SizeValueType>(organOrder.size()), fuseOrgan, nullptr);
  if (m_CoarseWeight > 0.0)
  {
    // The coarse vote, blended in voxel by voxel: each voxel's value depends on its index alone
    // (not on the box or slab it is computed in), so slabs give the whole volume's result.
    std::vector<LabelType> voted;
    for (const auto & entry : accumulators)
      if (!entry.second.sum.empty() && m_CoarseProbability.count(entry.first) > 0)
        voted.push_back(entry.first);
    auto blendOrgan = [&](SizeValueType which) {
      Accumulator &                organ = accumulators.at(voted[which]);
      const ProbabilityImageType & coarse = *m_CoarseProbability.at(voted[which]);
      double                       scale = 1.0;
      if (m_CoarseVoteScaledToPeak) // the whole map's peak: the same in every slab
      {
        const float * value = coarse.GetBufferPointer();
        const float   peak = *std::max_element(value, value + coarse.GetBufferedRegion().GetNumberOfPixels());
        scale = peak > 0.0f ? 1.0 / static_cast<double>(peak) : 1.0;
      }
      BlendCoarseProbability(coarse, *reference, organ.box, m_CoarseWeight, scale, organ.sum);
    };
    this->GetMultiThreader()->ParallelizeArray(0, static_cast<SizeValueType>(voted.size()), blendOrgan, nullptr);
  }

  // The largest margin of the score above the organ's threshold (>= 0), inside the organ's
  // attention; ties: the organ first in label order (a later organ must be strictly higher to
  // take a voxel). Margins in double: the subtraction's rounding error is far below the spacing
  // of float scores, so with one threshold for all organs the order is the scores' own. Then the
  // score map. Each voxel's decision depends on that voxel alone: the slices (the last axis) are
  // decided in parallel, each by all organs in label order.
  LabelType * labels = output->GetBufferPointer();
  m_Score = nullptr;
  unsigned char * score = nullptr;
  if (m_ScoreMap)
  {
    m_Score = ScoreImageType::New();
    m_Score->CopyInformation(reference);
    m_Score->SetRegions(region);
    m_Score->Allocate();
    m_Score->FillBuffer(0);
    score = m_Score->GetBufferPointer();
  }
  constexpr unsigned int last = ImageDimension - 1;
  // The rows (along x) of `a`'s box on slice z in raster order: fn(offset of the row's first
  // voxel in the image, its index, its first voxel's place in a.sum).
  auto forRowsOnSlice = [&](const Accumulator & a, IndexValueType z, auto && fn) {
    if (a.sum.empty() || z < a.box.GetIndex(last) ||
        z >= a.box.GetIndex(last) + static_cast<IndexValueType>(a.box.GetSize(last)))
      return;
    RegionType rows = a.box;
    rows.SetIndex(last, z);
    rows.SetSize(last, 1);
    rows.SetSize(0, 1);
    size_t v = a.Offset(rows.GetIndex());
    for (ImageRegionConstIteratorWithIndex<LabelImageType> row(output, rows); !row.IsAtEnd(); ++row)
    {
      fn(output->ComputeOffset(row.GetIndex()), row.GetIndex(), v);
      v += a.box.GetSize(0);
    }
  };
  auto decideSlice = [&](SizeValueType k) {
    const IndexValueType z = region.GetIndex(last) + static_cast<IndexValueType>(k);
    for (const auto & entry : accumulators) // (no structured bindings: captured below)
    {
      const LabelType      organ = entry.first;
      const Accumulator &  a = entry.second;
      const LabelType *    attention = m_Attention.at(organ)->GetBufferPointer();
      const IndexValueType width = static_cast<IndexValueType>(a.box.GetSize(0));
      forRowsOnSlice(a, z, [&](OffsetValueType rowOffset, IndexType index, size_t v) {
        for (IndexValueType x = 0; x < width; ++x, ++v)
        {
          const double margin = static_cast<double>(a.sum[v]) - a.threshold;
          if (!(margin >= 0.0))
            continue;
          const auto offset = rowOffset + x;
          if (attention[offset] == LabelType{})
            continue;
          const LabelType current = labels[offset];
          if (current == LabelType{})
          {
            labels[offset] = organ;
          }
          else
          {
            const Accumulator & other = accumulators.at(current);
            index[0] = a.box.GetIndex(0) + x;
            if (margin > static_cast<double>(other.sum[other.Offset(index)]) - other.threshold)
              labels[offset] = organ;
          }
        }
      });
    }
    if (!score)
      return;
    for (const auto & entry : accumulators)
    {
      const LabelType      organ = entry.first;
      const Accumulator &  a = entry.second;
      const IndexValueType width = static_cast<IndexValueType>(a.box.GetSize(0));
      forRowsOnSlice(a, z, [&](OffsetValueType rowOffset, const IndexType &, size_t v) {
        for (IndexValueType x = 0; x < width; ++x, ++v)
          if (labels[rowOffset + x] == organ)
            score[rowOffset + x] = static_cast<unsigned char>(std::clamp<long>(std::lround(255.0 * a.sum[v]), 1, 255));
      });
    }
  };
  this->GetMultiThreader()->ParallelizeArray(0, region.GetSize(last), decideSlice, nullptr);

  m_Probability.clear();
  if (m_ProbabilityMaps)
  {
    for (const auto & [organ, a] : accumulators)
    {
      auto map = ProbabilityImageType::New();
      map->CopyInformation(reference);
      map->SetRegions(region);
      map->Allocate();
      map->FillBuffer(0.0f);
      if (!a.sum.empty())
      {
        size_t                                   v = 0;
        ImageRegionConstIterator<LabelImageType> attended(m_Attention[organ], a.box);
        for (ImageRegionIterator<ProbabilityImageType> it(map, a.box); !it.IsAtEnd(); ++it, ++attended, ++v)
          it.Set(attended.Get() != LabelType{} ? a.sum[v] : 0.0f);
      }
      m_Probability[organ] = map;
    }
  }
  accumulators.clear();

  if (m_PostProcessing)
  {
    std::vector<LabelType> organs;
    for (const auto & entry : m_Attention)
      organs.push_back(entry.first);
    KeepLargestComponentsAndFillHoles(output, organs);
  }
}

template <typename TLabelImage>
void
LabelFusionFilter<TLabelImage>::KeepLargestComponentsAndFillHoles(LabelImageType *               output,
                                                                  const std::vector<LabelType> & organs)
{
  itk::KeepLargestComponentsAndFillHoles(output, organs);
}

template <typename TLabelImage>
void
LabelFusionFilter<TLabelImage>::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "Threshold: " << m_Threshold << std::endl;
  for (const auto & entry : m_OrganThreshold)
    os << indent << "Threshold of organ " << static_cast<double>(entry.first) << ": " << entry.second << std::endl;
  os << indent << "GaussianWeighting: " << m_GaussianWeighting << std::endl;
  os << indent << "PostProcessing: " << m_PostProcessing << std::endl;
  os << indent << "ProbabilityMaps: " << m_ProbabilityMaps << std::endl;
  os << indent << "ScoreMap: " << m_ScoreMap << std::endl;
  os << indent << "CoarseWeight: " << m_CoarseWeight << std::endl;
  os << indent << "CoarseVoteScaledToPeak: " << m_CoarseVoteScaledToPeak << std::endl;
  os << indent << "CoarseProbabilityMaps: " << m_CoarseProbability.size() << std::endl;
  os << indent << "AttentionMaps: " << m_Attention.size() << std::endl;
}

} // namespace itk

#endif
