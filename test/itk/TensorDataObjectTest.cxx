/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkTensorDataObject.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace {
itk::TensorDataObject::MetadataType
Items(int n)
{
  itk::TensorDataObject::MetadataType items(n);
  for (int i = 0; i < n; ++i)
  {
    items[i].organ = i + 1;
    items[i].slice = 10 + i;
  }
  return items;
}
} // namespace

TEST(TensorDataObject, HoldsNamedTensorsAndMetadata)
{
  auto data = itk::TensorDataObject::New();
  EXPECT_EQ(data->GetNumberOfItems(), 0);
  const at::Tensor image = at::rand({ 3, 2, 8, 8 });
  data->SetTensor("image", image);
  data->SetMetadata(Items(3));
  data->SetTensor("probability", at::zeros({ 3, 1, 8, 8 }));
  EXPECT_EQ(data->GetNumberOfItems(), 3);
  EXPECT_EQ(data->GetTensor("image").data_ptr(), image.data_ptr()); // stored, not copied
  EXPECT_EQ(data->GetTensorNames(), (std::vector<std::string>{ "image", "probability" }));
  EXPECT_EQ(data->GetMetadata()[2].organ, 3);
  EXPECT_EQ(data->GetMetadata()[1].slice, 11);
  data->RemoveTensor("probability");
  EXPECT_FALSE(data->HasTensor("probability"));
}

TEST(TensorDataObject, ItemCountsMustAgree)
{
  auto data = itk::TensorDataObject::New();
  data->SetTensor("image", at::rand({ 3, 2, 8, 8 }));
  EXPECT_THROW(data->SetTensor("low_level", at::rand({ 4, 8, 2, 2 })), itk::ExceptionObject);
  EXPECT_THROW(data->SetMetadata(Items(2)), itk::ExceptionObject);
  data->SetTensor("image", at::rand({ 5, 2, 8, 8 })); // the only tensor, no metadata: may change the count
  EXPECT_EQ(data->GetNumberOfItems(), 5);
  EXPECT_THROW(data->SetTensor("scalar", at::scalar_tensor(1.0)), itk::ExceptionObject);
  EXPECT_THROW(data->SetTensor("", at::rand({ 5 })), itk::ExceptionObject);
  try
  {
    data->GetTensor("high_level");
    ADD_FAILURE() << "no exception for a missing tensor";
  }
  catch (const itk::ExceptionObject & e)
  {
    EXPECT_NE(std::string(e.GetDescription()).find("no tensor 'high_level'"), std::string::npos) << e.GetDescription();
  }
}

TEST(TensorDataObject, ModifiedTimeGraftAndInitialize)
{
  auto       data = itk::TensorDataObject::New();
  const auto before = data->GetMTime();
  data->SetTensor("image", at::rand({ 2, 2, 4, 4 }));
  EXPECT_GT(data->GetMTime(), before);
  data->SetMetadata(Items(2));

  auto copy = itk::TensorDataObject::New();
  copy->Graft(data);
  EXPECT_EQ(copy->GetTensor("image").data_ptr(), data->GetTensor("image").data_ptr()); // shared storage
  EXPECT_EQ(copy->GetMetadata().size(), 2u);
  auto other = itk::DataObject::New();
  EXPECT_THROW(copy->Graft(other), itk::ExceptionObject);
  copy->Initialize();
  EXPECT_EQ(copy->GetNumberOfItems(), 0);
  EXPECT_TRUE(data->HasTensor("image")); // the source is untouched
}
