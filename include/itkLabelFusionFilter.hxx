/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkLabelFusionFilter_hxx
#define itkLabelFusionFilter_hxx

#include "itkLabelFusionFilter.h"

#include "itkBinaryFillholeImageFilter.h"
#include "itkConnectedComponentImageFilter.h"
#include "itkImageRegionIterator.h"
#include "itkRelabelComponentImageFilter.h"

#include <ATen/core/Tensor.h>

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
  this->AddOptionalInputName(name);
  this->ProcessObject::SetInput(name, const_cast<LabelImageType *>(attention));
  m_Attention[organ] = attention;
  this->Modified();
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
    itkExceptionMacro(<< "no probability map for organ " << static_cast<double>(organ) << " (not fused yet?)");
  }
  return it->second;
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

  at::Tensor probability;
  try
  {
    probability = patches->GetTensor("probability").detach().to(at::kCPU).to(at::kFloat).contiguous();
  }
  catch (const c10::Error & e)
  {
    itkExceptionMacro(<< "LibTorch error while reading the probabilities: " << e.what_without_backtrace());
  }
  const auto & metadata = patches->GetMetadata();
  if (probability.dim() != 4 || probability.size(1) != 1 || probability.size(2) != probability.size(3) ||
      probability.size(0) != static_cast<int64_t>(metadata.size()))
  {
    itkExceptionMacro(<< "expected \"probability\" [N, 1, P, P] with N = " << metadata.size() << " metadata entries");
  }
  const int64_t P = probability.size(2);
  const float * prob = probability.data_ptr<float>();

  // Sums and weights per organ.
  m_Probability.clear();
  std::map<LabelType, typename ProbabilityImageType::Pointer> weights;
  for (const auto & entry : m_Attention)
  {
    for (auto * target : { &m_Probability[entry.first], &weights[entry.first] })
    {
      *target = ProbabilityImageType::New();
      (*target)->CopyInformation(reference);
      (*target)->SetRegions(region);
      (*target)->Allocate();
      (*target)->FillBuffer(0.0f);
    }
  }
  const double sigma = P / 4.0;
  for (size_t n = 0; n < metadata.size(); ++n)
  {
    const auto &    m = metadata[n];
    const LabelType organ = static_cast<LabelType>(m.organ);
    const auto      found = m_Probability.find(organ);
    if (found == m_Probability.end())
    {
      itkExceptionMacro(<< "patch " << n << " belongs to organ " << m.organ << ", which has no attention map");
    }
    float * sum = found->second->GetBufferPointer();
    float * weight = weights[organ]->GetBufferPointer();
    for (int64_t r = 0; r < P; ++r)
      for (int64_t q = 0; q < P; ++q)
      {
        typename ProbabilityImageType::PointType p;
        for (unsigned int d = 0; d < ImageDimension && d < 3; ++d)
        {
          p[d] = m.origin[d] + q * m.spacing[0] * m.axes[d] + r * m.spacing[1] * m.axes[3 + d];
        }
        typename ProbabilityImageType::IndexType index;
        if (!reference->TransformPhysicalPointToIndex(p, index))
        {
          continue;
        }
        const double w =
          m_GaussianWeighting
            ? std::exp(-((q - P / 2.0) * (q - P / 2.0) + (r - P / 2.0) * (r - P / 2.0)) / (2 * sigma * sigma))
            : 1.0;
        const auto offset = found->second->ComputeOffset(index);
        sum[offset] += static_cast<float>(w * prob[(n * P + r) * P + q]);
        weight[offset] += static_cast<float>(w);
      }
  }
  for (auto & entry : m_Probability)
  {
    float *       sum = entry.second->GetBufferPointer();
    const float * weight = weights[entry.first]->GetBufferPointer();
    const size_t  count = region.GetNumberOfPixels();
    for (size_t v = 0; v < count; ++v)
    {
      sum[v] = weight[v] > 0 ? sum[v] / weight[v] : 0.0f;
    }
  }

  // Highest probability at or above the threshold, inside the organ's attention; ties: first organ.
  LabelType *  labels = output->GetBufferPointer();
  const size_t count = region.GetNumberOfPixels();
  for (size_t v = 0; v < count; ++v)
  {
    float best = -1.0f;
    for (const auto & entry : m_Probability)
    {
      const float value = entry.second->GetBufferPointer()[v];
      if (value >= m_Threshold && value > best && m_Attention[entry.first]->GetBufferPointer()[v] != LabelType{})
      {
        best = value;
        labels[v] = entry.first;
      }
    }
  }

  if (m_PostProcessing)
  {
    using MaskType = Image<unsigned char, ImageDimension>;
    using ComponentType = Image<unsigned int, ImageDimension>;
    for (const auto & entry : m_Probability)
    {
      const LabelType organ = entry.first;
      auto            mask = MaskType::New();
      mask->CopyInformation(reference);
      mask->SetRegions(region);
      mask->Allocate();
      unsigned char * mk = mask->GetBufferPointer();
      bool            any = false;
      for (size_t v = 0; v < count; ++v)
      {
        mk[v] = labels[v] == organ ? 1 : 0;
        any = any || mk[v];
      }
      if (!any)
        continue;
      auto components = ConnectedComponentImageFilter<MaskType, ComponentType>::New();
      components->SetInput(mask);
      components->FullyConnectedOn();
      auto relabel = RelabelComponentImageFilter<ComponentType, ComponentType>::New();
      relabel->SetInput(components->GetOutput());
      relabel->Update(); // component 1 is the largest
      const unsigned int * component = relabel->GetOutput()->GetBufferPointer();
      for (size_t v = 0; v < count; ++v)
      {
        mk[v] = component[v] == 1 ? 1 : 0;
      }
      auto fill = BinaryFillholeImageFilter<MaskType>::New();
      fill->SetInput(mask);
      fill->SetForegroundValue(1);
      fill->FullyConnectedOn();
      fill->Update();
      const unsigned char * filled = fill->GetOutput()->GetBufferPointer();
      for (size_t v = 0; v < count; ++v)
      {
        if (labels[v] == organ && !mk[v])
          labels[v] = LabelType{}; // a smaller component
        else if (filled[v] && labels[v] == LabelType{})
          labels[v] = organ; // a hole, filled only where nothing else is
      }
    }
  }
}

template <typename TLabelImage>
void
LabelFusionFilter<TLabelImage>::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "Threshold: " << m_Threshold << std::endl;
  os << indent << "GaussianWeighting: " << m_GaussianWeighting << std::endl;
  os << indent << "PostProcessing: " << m_PostProcessing << std::endl;
  os << indent << "AttentionMaps: " << m_Attention.size() << std::endl;
}

} // namespace itk

#endif
