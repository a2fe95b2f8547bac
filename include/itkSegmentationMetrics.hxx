/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkSegmentationMetrics_hxx
#define itkSegmentationMetrics_hxx

#include "itkSegmentationMetrics.h"

#include "itkImageRegionConstIteratorWithIndex.h"
#include "itkLabelBoundingBoxes.h"
#include "itkSignedMaurerDistanceMapImageFilter.h"

#include <algorithm>
#include <cmath>

namespace itk {

template <typename TLabelImage>
std::string
SegmentationMetrics<TLabelImage>::StatusName(StatusEnum status)
{
  switch (status)
  {
    case StatusEnum::Ok:
      return "ok";
    case StatusEnum::ReferenceEmpty:
      return "reference_empty";
    case StatusEnum::PredictionEmpty:
      return "prediction_empty";
    case StatusEnum::BothEmpty:
      return "both_empty";
  }
  return "unknown";
}

template <typename TLabelImage>
auto
SegmentationMetrics<TLabelImage>::Compute(const LabelImageType *         reference,
                                          const LabelImageType *         prediction,
                                          const std::vector<LabelType> & organs) -> std::vector<OrganMetrics>
{
  constexpr unsigned int Dimension = TLabelImage::ImageDimension;
  const auto             region = reference->GetBufferedRegion();
  if (prediction->GetBufferedRegion() != region ||
      !reference->GetSpacing().GetVnlVector().is_equal(prediction->GetSpacing().GetVnlVector(), 1e-6) ||
      !reference->GetOrigin().GetVnlVector().is_equal(prediction->GetOrigin().GetVnlVector(), 1e-4) ||
      !reference->GetDirection().GetVnlMatrix().is_equal(prediction->GetDirection().GetVnlMatrix(), 1e-6))
  {
    itkGenericExceptionMacro(<< "SegmentationMetrics: the prediction (size " << prediction->GetBufferedRegion().GetSize()
                             << ") does not have the reference's geometry (size " << region.GetSize()
                             << ", spacing, origin, direction)");
  }
  const auto referenceBoxes = LabelBoundingBoxes(reference, region);
  const auto predictionBoxes = LabelBoundingBoxes(prediction, region);

  using MaskType = Image<unsigned char, Dimension>;
  using DistanceType = Image<float, Dimension>;
  std::vector<OrganMetrics> result;
  for (const LabelType organ : organs)
  {
    OrganMetrics m;
    m.label = organ;
    const auto a = referenceBoxes.find(organ), b = predictionBoxes.find(organ);
    if (a == referenceBoxes.end() || b == predictionBoxes.end())
    {
      m.status = a == referenceBoxes.end() && b == predictionBoxes.end()
                   ? StatusEnum::BothEmpty
                   : (a == referenceBoxes.end() ? StatusEnum::ReferenceEmpty : StatusEnum::PredictionEmpty);
    }
    // The joint box grown by one voxel (surface tests look at face neighbours), within the image.
    typename LabelImageType::RegionType box;
    bool                                any = false;
    for (const auto * found : { &a, &b })
    {
      const auto & it = *found;
      if (it == referenceBoxes.end() || it == predictionBoxes.end())
        continue;
      if (!any)
      {
        box = it->second;
        any = true;
        continue;
      }
      for (unsigned int d = 0; d < Dimension; ++d)
      {
        const auto lo = std::min(box.GetIndex(d), it->second.GetIndex(d));
        const auto hi = std::max(box.GetIndex(d) + static_cast<IndexValueType>(box.GetSize(d)),
                                 it->second.GetIndex(d) + static_cast<IndexValueType>(it->second.GetSize(d)));
        box.SetIndex(d, lo);
        box.SetSize(d, static_cast<SizeValueType>(hi - lo));
      }
    }
    if (!any)
    {
      result.push_back(m);
      continue;
    }
    box.PadByRadius(1);
    box.Crop(region);

    // Masks of A and B over the box; overlap counts.
    auto makeMask = [&](const LabelImageType * image) {
      auto mask = MaskType::New();
      mask->CopyInformation(image);
      mask->SetRegions(box);
      mask->Allocate();
      ImageRegionConstIterator<LabelImageType> in(image, box);
      ImageRegionIterator<MaskType>            out(mask, box);
      for (; !in.IsAtEnd(); ++in, ++out)
        out.Set(in.Get() == organ ? 1 : 0);
      return mask;
    };
    const auto maskA = makeMask(reference), maskB = makeMask(prediction);
    uint64_t   both = 0;
    {
      ImageRegionConstIterator<MaskType> ia(maskA, box), ib(maskB, box);
      for (; !ia.IsAtEnd(); ++ia, ++ib)
      {
        m.referenceVoxels += ia.Get();
        m.predictedVoxels += ib.Get();
        both += ia.Get() & ib.Get();
      }
    }
    m.dice = 2.0 * both / static_cast<double>(m.referenceVoxels + m.predictedVoxels);
    m.iou = both / static_cast<double>(m.referenceVoxels + m.predictedVoxels - both);
    if (m.status != StatusEnum::Ok)
    {
      result.push_back(m); // one side empty: overlap 0, no surface distance
      continue;
    }

    // Surface masks: a voxel with a face neighbour outside the label (or outside the image).
    auto surfaceOf = [&](const MaskType * mask) {
      auto surface = MaskType::New();
      surface->CopyInformation(mask);
      surface->SetRegions(box);
      surface->Allocate();
      surface->FillBuffer(0);
      for (ImageRegionConstIteratorWithIndex<MaskType> it(mask, box); !it.IsAtEnd(); ++it)
      {
        if (!it.Get())
          continue;
        bool onSurface = false;
        for (unsigned int d = 0; d < Dimension && !onSurface; ++d)
          for (const int step : { -1, 1 })
          {
            auto neighbour = it.GetIndex();
            neighbour[d] += step;
            if (!box.IsInside(neighbour) || !mask->GetPixel(neighbour))
            {
              onSurface = true;
              break;
            }
          }
        if (onSurface)
          surface->SetPixel(it.GetIndex(), 1);
      }
      return surface;
    };
    const auto surfaceA = surfaceOf(maskA), surfaceB = surfaceOf(maskB);
    // (A voxel on the box's border is on the image's border or has background beyond it: the
    // box was grown by one voxel around both organs, so its border holds no label voxel except
    // at the image's edge, where outside counts as outside the label.)

    auto distanceTo = [&](const MaskType * surface) {
      auto distance = SignedMaurerDistanceMapImageFilter<MaskType, DistanceType>::New();
      distance->SetInput(surface);
      distance->SetUseImageSpacing(true);
      distance->SetSquaredDistance(false);
      distance->SetInsideIsPositive(false);
      distance->SetBackgroundValue(0);
      distance->Update();
      typename DistanceType::Pointer out = distance->GetOutput();
      out->DisconnectPipeline();
      return out;
    };
    std::vector<double> distances;
    for (const auto & [from, to] : { std::make_pair(surfaceA, surfaceB), std::make_pair(surfaceB, surfaceA) })
    {
      const auto                         map = distanceTo(to);
      ImageRegionConstIterator<MaskType> s(from, box);
      ImageRegionConstIterator<DistanceType> d(map, box);
      for (; !s.IsAtEnd(); ++s, ++d)
        if (s.Get())
          distances.push_back(std::max(0.0, static_cast<double>(d.Get()))); // 0 on the other surface
    }
    std::sort(distances.begin(), distances.end());
    double sum = 0;
    for (const double v : distances)
      sum += v;
    m.msd = sum / static_cast<double>(distances.size());
    m.hd = distances.back();
    const double position = 0.95 * static_cast<double>(distances.size() - 1);
    const auto   lower = static_cast<size_t>(std::floor(position));
    const size_t upper = std::min(lower + 1, distances.size() - 1);
    m.hd95 = distances[lower] + (position - static_cast<double>(lower)) * (distances[upper] - distances[lower]);
    result.push_back(m);
  }
  return result;
}

} // namespace itk

#endif
