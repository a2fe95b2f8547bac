/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkLabelBoundingBoxes_h
#define itkLabelBoundingBoxes_h

#include "itkImage.h"

#include <algorithm>
#include <map>
#include <type_traits>

namespace itk {

/** The index bounding box of each non-zero value of `image` inside `region` (which must lie in
 *  the buffered region), in one pass over the buffer by rows and runs of equal values: much
 *  faster than an iterator with index on the large, mostly empty label and attention volumes
 *  of the pipeline. With `mergeAll`, every non-zero value counts as one label (key 1). */
template <typename TImage>
std::map<typename TImage::PixelType, typename TImage::RegionType>
LabelBoundingBoxes(const TImage * image, const typename TImage::RegionType & region, bool mergeAll = false)
{
  using PixelType = typename TImage::PixelType;
  using RegionType = typename TImage::RegionType;
  using IndexType = typename TImage::IndexType;
  constexpr unsigned int                               Dimension = TImage::ImageDimension;
  std::map<PixelType, std::pair<IndexType, IndexType>> boxes;
  if (region.GetNumberOfPixels() == 0)
  {
    return {};
  }
  const IndexValueType width = static_cast<IndexValueType>(region.GetSize(0));
  // Walk the rows (all index combinations of dimensions 1..D-1).
  IndexType row = region.GetIndex();
  while (true)
  {
    const PixelType * p = image->GetBufferPointer() + image->ComputeOffset(row);
    for (IndexValueType x = 0; x < width;)
    {
      if constexpr (std::is_integral_v<PixelType>)
      {
        // Background is most of a row: skip it a block at a time (an OR over 64 values
        // vectorises; one branch per block instead of one per value).
        while (x + 64 <= width)
        {
          PixelType any{};
          for (IndexValueType i = 0; i < 64; ++i)
            any |= p[x + i];
          if (any != PixelType{})
            break;
          x += 64;
        }
        if (x >= width)
          break;
      }
      if (p[x] == PixelType{})
      {
        ++x;
        continue;
      }
      const PixelType value = p[x];
      IndexValueType  end = x + 1;
      while (end < width && (mergeAll ? p[end] != PixelType{} : p[end] == value))
        ++end;
      const PixelType key = mergeAll ? PixelType{ 1 } : value;
      IndexType       first = row, last = row;
      first[0] = row[0] + x;
      last[0] = row[0] + end - 1;
      const auto found = boxes.find(key);
      if (found == boxes.end())
      {
        boxes.emplace(key, std::make_pair(first, last));
      }
      else
      {
        for (unsigned int d = 0; d < Dimension; ++d)
        {
          found->second.first[d] = std::min(found->second.first[d], first[d]);
          found->second.second[d] = std::max(found->second.second[d], last[d]);
        }
      }
      x = end;
    }
    unsigned int d = 1;
    for (; d < Dimension; ++d)
    {
      if (++row[d] < region.GetIndex(d) + static_cast<IndexValueType>(region.GetSize(d)))
        break;
      row[d] = region.GetIndex(d);
    }
    if (d == Dimension)
      break;
  }
  std::map<PixelType, RegionType> result;
  for (const auto & [key, corners] : boxes)
  {
    RegionType box;
    box.SetIndex(corners.first);
    for (unsigned int d = 0; d < Dimension; ++d)
      box.SetSize(d, static_cast<SizeValueType>(corners.second[d] - corners.first[d] + 1));
    result.emplace(key, box);
  }
  return result;
}

} // namespace itk

#endif
