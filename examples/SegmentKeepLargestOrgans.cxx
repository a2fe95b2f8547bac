/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Example: read a CT -> AGCLSegmentationFilter (without its own post-processing) -> keep the
// largest connected component of each organ with ITK's connected-component filters -> write.
//
//   SegmentKeepLargestOrgans CT.nii.gz MODEL.agcl OUT.nii.gz [cpu|cuda]
#include "itkAGCLSegmentationFilter.h"
#include "itkBinaryThresholdImageFilter.h"
#include "itkConnectedComponentImageFilter.h"
#include "itkImageFileReader.h"
#include "itkImageFileWriter.h"
#include "itkImageRegionIterator.h"
#include "itkRelabelComponentImageFilter.h"

#include <iostream>

int
main(int argc, char * argv[])
{
  if (argc < 4)
  {
    std::cerr << "usage: " << argv[0] << " CT MODEL.agcl OUT [device]" << std::endl;
    return 1;
  }
  using CTImage = itk::Image<short, 3>;
  using LabelImage = itk::Image<unsigned char, 3>;
  using ComponentImage = itk::Image<unsigned int, 3>;
  try
  {
    auto reader = itk::ImageFileReader<CTImage>::New();
    reader->SetFileName(argv[1]);
    auto segment = itk::AGCLSegmentationFilter<CTImage, LabelImage>::New();
    segment->SetInput(reader->GetOutput());
    segment->SetModelFileName(argv[2]);
    segment->SetDevice(argc > 4 ? argv[4] : "cpu");
    segment->PostProcessingOff(); // done below with ITK's filters instead
    segment->Update();
    LabelImage::Pointer labels = segment->GetOutput();

    // Per organ: threshold -> connected components -> relabel by size -> keep component 1.
    auto result = LabelImage::New();
    result->CopyInformation(labels);
    result->SetRegions(labels->GetLargestPossibleRegion());
    result->Allocate(true);
    for (const auto & organ : segment->GetModel()->GetConfig().organs)
    {
      auto threshold = itk::BinaryThresholdImageFilter<LabelImage, LabelImage>::New();
      threshold->SetInput(labels);
      threshold->SetLowerThreshold(static_cast<unsigned char>(organ.label));
      threshold->SetUpperThreshold(static_cast<unsigned char>(organ.label));
      auto components = itk::ConnectedComponentImageFilter<LabelImage, ComponentImage>::New();
      components->SetInput(threshold->GetOutput());
      components->FullyConnectedOn();
      auto relabel = itk::RelabelComponentImageFilter<ComponentImage, ComponentImage>::New();
      relabel->SetInput(components->GetOutput());
      relabel->Update();
      const auto                                    sizes = relabel->GetSizeOfObjectsInPixels();
      itk::ImageRegionConstIterator<ComponentImage> in(relabel->GetOutput(), result->GetLargestPossibleRegion());
      itk::ImageRegionIterator<LabelImage>          out(result, result->GetLargestPossibleRegion());
      for (; !in.IsAtEnd(); ++in, ++out)
        if (in.Get() == 1)
          out.Set(static_cast<unsigned char>(organ.label));
      std::cout << organ.name << ": " << sizes.size() << " component(s), kept " << (sizes.empty() ? 0 : sizes[0])
                << " voxels" << std::endl;
    }
    auto writer = itk::ImageFileWriter<LabelImage>::New();
    writer->SetInput(result);
    writer->SetFileName(argv[3]);
    writer->UseCompressionOn();
    writer->Update();
  }
  catch (const itk::ExceptionObject & e)
  {
    std::cerr << "error: " << e.GetDescription() << std::endl;
    return 2;
  }
  return 0;
}
