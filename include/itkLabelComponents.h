/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkLabelComponents_h
#define itkLabelComponents_h

#include "itkImage.h"
#include "itkLabelBoundingBoxes.h"
#include "itkMultiThreaderBase.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <numeric>
#include <utility>
#include <vector>

namespace itk {

/** What the post-processing of one organ changes in a label image, found without changing it:
 *  runs of voxels along x, each given by the buffer offset of its first voxel and its length.
 *  `removed`: the organ's voxels outside its largest fully connected component; `holes`: the
 *  holes of that component (voxels not in it, fully connected among themselves, none on the
 *  border of the organ's bounding box), to be given to the organ where they are background. */
struct LabelCleanup
{
  struct Run
  {
    OffsetValueType offset;
    SizeValueType   length;
  };
  std::vector<Run> removed;
  std::vector<Run> holes;
};

namespace label_components_detail {

// The runs of a box by rows; a row is one combination of the indices of dimensions 1..D-1,
// rows in raster order; the runs of row r are runs[begin[r]] .. runs[begin[r + 1] - 1], sorted,
// with box-relative x from `first` to `last` inclusive.
struct Runs
{
  struct Run
  {
    IndexValueType first;
    IndexValueType last;
  };
  std::vector<std::size_t> begin{ 0 };
  std::vector<Run>         runs;
};

inline std::size_t
Find(std::vector<std::size_t> & parent, std::size_t i)
{
  while (parent[i] != i)
  {
    parent[i] = parent[parent[i]];
    i = parent[i];
  }
  return i;
}

// The lower index stays the root: a set's root is its first run in raster order.
inline void
Unite(std::vector<std::size_t> & parent, std::size_t a, std::size_t b)
{
  a = Find(parent, a);
  b = Find(parent, b);
  if (a < b)
    parent[b] = a;
  else if (b < a)
    parent[a] = b;
}

// Visits the rows of a box of `size` in raster order with each row's indices in dimensions
// 1..D-1 (relative to the box).
template <unsigned int D, typename TFunction>
void
ForEachRow(const Size<D> & size, TFunction && function)
{
  static_assert(D >= 2, "label components need at least two dimensions");
  std::size_t rows = 1;
  for (unsigned int d = 1; d < D; ++d)
    rows *= size[d];
  std::array<IndexValueType, D - 1> at{};
  for (std::size_t r = 0; r < rows; ++r)
  {
    function(r, at);
    for (unsigned int k = 0; k + 1 < D; ++k)
    {
      if (++at[k] < static_cast<IndexValueType>(size[k + 1]))
        break;
      at[k] = 0;
    }
  }
}

// Union-find over the runs with full connectivity (26 neighbours in 3-D, 8 in 2-D): two runs
// of rows that differ by at most one in every row index touch when their x ranges, one of them
// grown by a voxel at each end, overlap. Each row is compared with its neighbours earlier in
// raster order. Returns each run's root.
template <unsigned int D>
std::vector<std::size_t>
ConnectRuns(const Runs & runs, const Size<D> & size)
{
  std::vector<std::size_t> parent(runs.runs.size());
  std::iota(parent.begin(), parent.end(), std::size_t{ 0 });
  // Row strides and the offsets to the earlier neighbour rows: vectors in {-1, 0, 1}^(D-1)
  // whose last non-zero component is -1.
  std::array<std::size_t, D - 1> stride{};
  stride[0] = 1;
  for (unsigned int k = 1; k + 1 < D; ++k)
    stride[k] = stride[k - 1] * size[k];
  std::vector<std::array<int, D - 1>> offsets;
  std::array<int, D - 1>              o;
  o.fill(-1);
  while (true)
  {
    int last = 0;
    for (unsigned int k = 0; k + 1 < D; ++k)
      if (o[k] != 0)
        last = o[k];
    if (last == -1)
      offsets.push_back(o);
    unsigned int k = 0;
    for (; k + 1 < D; ++k)
    {
      if (++o[k] <= 1)
        break;
      o[k] = -1;
    }
    if (k + 1 == D)
      break;
  }
  const auto & begin = runs.begin;
  const auto & run = runs.runs;
  ForEachRow<D>(size, [&](std::size_t r, const std::array<IndexValueType, D - 1> & at) {
    if (begin[r] == begin[r + 1])
      return;
    for (const auto & offset : offsets)
    {
      std::ptrdiff_t neighbour = static_cast<std::ptrdiff_t>(r);
      bool           inside = true;
      for (unsigned int k = 0; k + 1 < D && inside; ++k)
      {
        const IndexValueType i = at[k] + offset[k];
        inside = i >= 0 && i < static_cast<IndexValueType>(size[k + 1]);
        neighbour += offset[k] * static_cast<std::ptrdiff_t>(stride[k]);
      }
      if (!inside)
        continue;
      std::size_t       a = begin[r], b = begin[neighbour];
      const std::size_t aEnd = begin[r + 1], bEnd = begin[neighbour + 1];
      while (a < aEnd && b < bEnd)
      {
        if (run[a].last + 1 < run[b].first)
          ++a;
        else if (run[b].last + 1 < run[a].first)
          ++b;
        else
        {
          Unite(parent, a, b);
          if (run[a].last < run[b].last)
            ++a;
          else
            ++b;
        }
      }
    }
  });
  for (std::size_t i = 0; i < parent.size(); ++i)
    parent[i] = Find(parent, i);
  return parent;
}

} // namespace label_components_detail

/** The post-processing of `organ` in `labels` on `box` (which holds every voxel of the organ
 *  and lies in the buffered region), as a LabelCleanup; `labels` is not changed. The largest
 *  component is the one with the most voxels (ties: the one whose first voxel comes first in
 *  raster order, as ITK's ConnectedComponentImageFilter numbers them). Work: one pass over the
 *  box, then union-find over runs. Safe to call for several organs of one image at once. */
template <typename TImage>
LabelCleanup
ComputeLabelCleanup(const TImage * labels, typename TImage::PixelType organ, const typename TImage::RegionType & box)
{
  using namespace label_components_detail;
  constexpr unsigned int D = TImage::ImageDimension;
  const auto             size = box.GetSize();
  const IndexValueType   width = static_cast<IndexValueType>(size[0]);
  LabelCleanup           cleanup;
  if (box.GetNumberOfPixels() == 0)
    return cleanup;

  // The organ's runs, and each row's buffer offset.
  Runs                         organRuns;
  std::vector<OffsetValueType> rowOffset;
  ForEachRow<D>(size, [&](std::size_t, const std::array<IndexValueType, D - 1> & at) {
    auto index = box.GetIndex();
    for (unsigned int k = 1; k < D; ++k)
      index[k] += at[k - 1];
    const OffsetValueType offset = labels->ComputeOffset(index);
    rowOffset.push_back(offset);
    const auto * p = labels->GetBufferPointer() + offset;
    for (IndexValueType x = 0; x < width; ++x)
    {
      if (p[x] != organ)
        continue;
      const IndexValueType first = x;
      while (x + 1 < width && p[x + 1] == organ)
        ++x;
      organRuns.runs.push_back({ first, x });
    }
    organRuns.begin.push_back(organRuns.runs.size());
  });
  if (organRuns.runs.empty())
    return cleanup;

  // The largest component.
  const auto               root = ConnectRuns<D>(organRuns, size);
  std::vector<std::size_t> voxels(root.size(), 0);
  for (std::size_t i = 0; i < root.size(); ++i)
    voxels[root[i]] += static_cast<std::size_t>(organRuns.runs[i].last - organRuns.runs[i].first + 1);
  std::size_t largest = 0;
  for (std::size_t i = 1; i < voxels.size(); ++i)
    if (voxels[i] > voxels[largest])
      largest = i;

  // The runs outside it (removed), and the gaps between its runs in each row (its complement).
  Runs gaps;
  for (std::size_t r = 0; r + 1 < organRuns.begin.size(); ++r)
  {
    IndexValueType next = 0; // the first x not yet covered in this row
    for (std::size_t i = organRuns.begin[r]; i < organRuns.begin[r + 1]; ++i)
    {
      const auto & run = organRuns.runs[i];
      if (root[i] != largest)
      {
        cleanup.removed.push_back({ rowOffset[r] + run.first, static_cast<SizeValueType>(run.last - run.first + 1) });
        continue;
      }
      if (run.first > next)
        gaps.runs.push_back({ next, run.first - 1 });
      next = run.last + 1;
    }
    if (next < width)
      gaps.runs.push_back({ next, width - 1 });
    gaps.begin.push_back(gaps.runs.size());
  }

  // The complement's components that touch the box's border are outside; the others are holes.
  const auto        gapRoot = ConnectRuns<D>(gaps, size);
  std::vector<char> border(gapRoot.size(), 0);
  ForEachRow<D>(size, [&](std::size_t r, const std::array<IndexValueType, D - 1> & at) {
    bool rowOnBorder = false;
    for (unsigned int k = 1; k < D; ++k)
      rowOnBorder = rowOnBorder || at[k - 1] == 0 || at[k - 1] + 1 == static_cast<IndexValueType>(size[k]);
    for (std::size_t i = gaps.begin[r]; i < gaps.begin[r + 1]; ++i)
      if (rowOnBorder || gaps.runs[i].first == 0 || gaps.runs[i].last + 1 == width)
        border[gapRoot[i]] = 1;
  });
  for (std::size_t r = 0; r + 1 < gaps.begin.size(); ++r)
    for (std::size_t i = gaps.begin[r]; i < gaps.begin[r + 1]; ++i)
      if (!border[gapRoot[i]])
        cleanup.holes.push_back({ rowOffset[r] + gaps.runs[i].first,
                                  static_cast<SizeValueType>(gaps.runs[i].last - gaps.runs[i].first + 1) });
  return cleanup;
}

/** Applies `cleanup` (computed on `labels` for `organ`) in place: the holes' background voxels
 *  become `organ`, then the removed voxels become background. The organs of one image are
 *  applied one after the other (an organ's holes may hold background another organ freed). */
template <typename TImage>
void
ApplyLabelCleanup(TImage * labels, typename TImage::PixelType organ, const LabelCleanup & cleanup)
{
  using PixelType = typename TImage::PixelType;
  PixelType * buffer = labels->GetBufferPointer();
  for (const auto & run : cleanup.holes)
    for (SizeValueType i = 0; i < run.length; ++i)
      if (buffer[run.offset + i] == PixelType{})
        buffer[run.offset + i] = organ;
  for (const auto & run : cleanup.removed)
    std::fill_n(buffer + run.offset, run.length, PixelType{});
}

/** Each of `organs` in `labels` (its buffered region) keeps its largest fully connected
 *  component, and that component's holes are filled with the organ where they are background;
 *  each organ is processed on the bounding box of its voxels (a background region touching
 *  the box's border is not a hole). The organs are computed in parallel on ITK's threads
 *  (largest boxes first) and applied in the order given, so the result is that of processing
 *  them one after the other: an organ's processing changes only its own voxels and
 *  background, so every organ's voxels and box are the same before and after the others'. */
template <typename TImage>
void
KeepLargestComponentsAndFillHoles(TImage * labels, const std::vector<typename TImage::PixelType> & organs)
{
  using PixelType = typename TImage::PixelType;
  using RegionType = typename TImage::RegionType;
  const auto                                    boxes = LabelBoundingBoxes(labels, labels->GetBufferedRegion());
  std::vector<std::pair<PixelType, RegionType>> work;
  for (const PixelType organ : organs)
  {
    const auto found = boxes.find(organ);
    if (found != boxes.end() && organ != PixelType{})
      work.emplace_back(organ, found->second);
  }
  if (work.empty())
    return;
  std::vector<std::size_t> order(work.size());
  std::iota(order.begin(), order.end(), std::size_t{ 0 });
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return work[a].second.GetNumberOfPixels() > work[b].second.GetNumberOfPixels();
  });
  std::vector<LabelCleanup> cleanups(work.size());
  std::atomic<std::size_t>  next{ 0 };
  auto                      threader = MultiThreaderBase::New();
  const auto workers = std::min<std::size_t>(std::max<std::size_t>(threader->GetNumberOfWorkUnits(), 1), work.size());
  const TImage * in = labels;
  threader->ParallelizeArray(
    0,
    workers,
    [&](SizeValueType) {
      for (std::size_t k = next++; k < order.size(); k = next++)
        cleanups[order[k]] = ComputeLabelCleanup(in, work[order[k]].first, work[order[k]].second);
    },
    nullptr);
  for (std::size_t k = 0; k < work.size(); ++k)
    ApplyLabelCleanup(labels, work[k].first, cleanups[k]);
}

} // namespace itk

#endif
