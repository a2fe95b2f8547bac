/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkTensorDataObjectFilter.h"

#include "itkConvertTorchErrors.h"

#include "agcl/Device.h"
#include "agcl/TorchCompat.h"

#include <stdexcept>

namespace itk {

TensorDataObjectFilter::TensorDataObjectFilter()
{
  this->SetNumberOfRequiredInputs(1);
  this->SetNumberOfRequiredOutputs(1);
  this->SetNthOutput(0, this->MakeOutput(0));
}

ProcessObject::DataObjectPointer
TensorDataObjectFilter::MakeOutput(DataObjectPointerArraySizeType)
{
  return TensorDataObject::New().GetPointer();
}

void
TensorDataObjectFilter::SetInput(const TensorDataObject * input)
{
  this->SetNthInput(0, const_cast<TensorDataObject *>(input));
}

const TensorDataObject *
TensorDataObjectFilter::GetInput() const
{
  return dynamic_cast<const TensorDataObject *>(this->ProcessObject::GetInput(0));
}

TensorDataObject *
TensorDataObjectFilter::GetOutput()
{
  return dynamic_cast<TensorDataObject *>(this->ProcessObject::GetOutput(0));
}

void
TensorDataObjectFilter::VerifyPreconditions() ITKv5_CONST
{
  Superclass::VerifyPreconditions();
  if (m_BatchSize == 0)
  {
    itkExceptionMacro(<< "BatchSize must be at least 1");
  }
  ConvertTorchErrors("Device", [this] { agcl::ParseDevice(m_Device); });
  ConvertTorchErrors("Precision", [this] { agcl::ParsePrecision(m_Precision, agcl::ParseDevice(m_Device).type()); });
}

void
TensorDataObjectFilter::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "Device: " << m_Device << std::endl;
  os << indent << "Precision: " << m_Precision << std::endl;
  os << indent << "BatchSize: " << m_BatchSize << std::endl;
}

} // namespace itk
