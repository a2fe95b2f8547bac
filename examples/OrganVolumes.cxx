/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
// Example: organ volumes in mL from a label map with ITK's label-map filters.
//
//   OrganVolumes LABELS.nii.gz      -> one line per label: "label,voxels,volume_ml"
#include "itkImageFileReader.h"
#include "itkLabelImageToShapeLabelMapFilter.h"

#include <iomanip>
#include <iostream>

int
main(int argc, char * argv[])
{
  if (argc != 2)
  {
    std::cerr << "usage: " << argv[0] << " LABELS" << std::endl;
    return 1;
  }
  using LabelImage = itk::Image<unsigned char, 3>;
  try
  {
    auto reader = itk::ImageFileReader<LabelImage>::New();
    reader->SetFileName(argv[1]);
    auto shapes = itk::LabelImageToShapeLabelMapFilter<LabelImage>::New();
    shapes->SetInput(reader->GetOutput());
    shapes->SetBackgroundValue(0);
    shapes->Update();
    std::cout << "label,voxels,volume_ml\n";
    const auto * map = shapes->GetOutput();
    for (unsigned int i = 0; i < map->GetNumberOfLabelObjects(); ++i)
    {
      const auto * object = map->GetNthLabelObject(i);
      // GetPhysicalSize: mm^3 (voxel count x voxel volume); 1 mL = 1000 mm^3.
      std::cout << int(object->GetLabel()) << "," << object->GetNumberOfPixels() << "," << std::fixed
                << std::setprecision(3) << object->GetPhysicalSize() / 1000.0 << "\n";
    }
  }
  catch (const itk::ExceptionObject & e)
  {
    std::cerr << "error: " << e.GetDescription() << std::endl;
    return 2;
  }
  return 0;
}
