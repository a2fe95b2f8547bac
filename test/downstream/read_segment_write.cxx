// A user's program: read a CT (NIfTI) with ITK's reader, segment it with the one-call filter,
// measure each label with ITK's LabelStatisticsImageFilter, write the label map (NIfTI).
//   read_segment_write CT.nii.gz MODEL.agcl LABELS.nii.gz
#include "itkAGCLSegmentationFilter.h"
#include "itkImageFileReader.h"
#include "itkImageFileWriter.h"
#include "itkLabelStatisticsImageFilter.h"

#include <iostream>

int
main(int argc, char * argv[])
{
  if (argc != 4)
  {
    std::cerr << "usage: read_segment_write CT MODEL LABELS" << std::endl;
    return 2;
  }
  using CT = itk::Image<short, 3>;
  using Labels = itk::Image<unsigned char, 3>;
  try
  {
    auto reader = itk::ImageFileReader<CT>::New();
    reader->SetFileName(argv[1]);
    auto segment = itk::AGCLSegmentationFilter<CT, Labels>::New();
    segment->SetInput(reader->GetOutput());
    segment->SetModelFileName(argv[2]);
    auto statistics = itk::LabelStatisticsImageFilter<CT, Labels>::New();
    statistics->SetInput(reader->GetOutput());
    statistics->SetLabelInput(segment->GetOutput());
    statistics->Update();
    for (const auto label : statistics->GetValidLabelValues())
      std::cout << "label " << static_cast<int>(label) << ": " << statistics->GetCount(label) << " voxels, mean "
                << statistics->GetMean(label) << " HU" << std::endl;
    auto writer = itk::ImageFileWriter<Labels>::New();
    writer->SetInput(segment->GetOutput());
    writer->SetFileName(argv[3]);
    writer->Update();
    std::cout << "wrote " << argv[3] << " (" << statistics->GetNumberOfLabels() << " labels)" << std::endl;
  }
  catch (const itk::ExceptionObject & e)
  {
    std::cerr << e.GetDescription() << std::endl;
    return 1;
  }
  return 0;
}
