// Uses the installed headers and libraries: builds an image, views it as a tensor, copies it back.
#include "agcl/BuildInfo.h"
#include "itkImageToTensor.h"
#include "itkTensorToImage.h"

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
  return value == 3.0f ? 0 : 1;
}
