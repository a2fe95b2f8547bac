// Uses the installed headers and libraries: builds an image, views it as a tensor, copies it back;
// then segments a small phantom with the one-call filter and an untrained model saved here.
#include "agcl/AGCLModel.h"
#include "agcl/BuildInfo.h"
#include "itkAGCLSegmentationFilter.h"
#include "itkAbdominalPhantomImageSource.h"
#include "itkImageToTensor.h"
#include "itkTensorToImage.h"

#include <cstdio>
#include <iostream>

int
main()
{
  using Image = itk::Image<float, 3>;
  auto image = Image::New();
  image->SetRegions(Image::SizeType{ { 4, 3, 2 } });
  image->Allocate();
  image->FillBuffer(1.5f);
  const at::Tensor view = itk::ImageToTensor<Image>::View(image);
  auto             back = itk::TensorToImage<Image>::Convert(view.mul(2), image);
  const float      value = back->GetPixel({ { 3, 2, 1 } });
  std::cout << "agcl " << agcl::Version() << " downstream value " << value << std::endl;

  using Source = itk::AbdominalPhantomImageSource;
  agcl::ModelConfig config;
  config.patch_size = 32;
  config.encoder_width = 8;
  config.decoder_channels = 16;
  config.coarse_base_channels = 4;
  const std::string model = "downstream-model.agcl";
  agcl::AGCLModel(config).Save(model);
  auto             source = Source::New();
  Source::SizeType size{ { 48, 48, 12 } };
  source->SetSize(size);
  auto segment = itk::AGCLSegmentationFilter<Source::CTImageType, Source::LabelImageType>::New();
  segment->SetInput(source->GetOutput());
  segment->SetModelFileName(model);
  segment->Update();
  std::remove(model.c_str());
  const bool sameGeometry =
    segment->GetOutput()->GetLargestPossibleRegion() == source->GetOutput()->GetLargestPossibleRegion();
  std::cout << "segmented " << segment->GetNumberOfPatches() << " patches" << std::endl;
  return value == 3.0f && sameGeometry ? 0 : 1;
}
