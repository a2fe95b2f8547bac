/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkTensorDataObjectFilter_h
#define itkTensorDataObjectFilter_h

#include "itkProcessObject.h"
#include "itkTensorDataObject.h"

#include <string>

namespace itk {

/** \class TensorDataObjectFilter
 * \brief Base of the network stages that take one TensorDataObject and produce another
 * (AGCLEncoderFilter, ASPPDecoderFilter): input/output plumbing, the device ("cpu", "cuda",
 * "cuda:N", checked before the filter runs) and the batch size.
 * \ingroup AGCLSegmentation
 */
class TensorDataObjectFilter : public ProcessObject
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(TensorDataObjectFilter);
  using Self = TensorDataObjectFilter;
  using Superclass = ProcessObject;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkTypeMacro(TensorDataObjectFilter, ProcessObject);

  void
  SetInput(const TensorDataObject * input);
  const TensorDataObject *
  GetInput() const;
  TensorDataObject *
  GetOutput();

  itkSetStringMacro(Device);
  itkGetStringMacro(Device);
  itkSetMacro(BatchSize, unsigned int);
  itkGetConstMacro(BatchSize, unsigned int);
  /** The network's precision: "float32" (default), "bfloat16" (autocast on the CPU or CUDA) or
   *  "float16" (autocast, CUDA only); outputs are float32 either way. Checked before the filter
   *  runs (agcl::ParsePrecision). */
  itkSetStringMacro(Precision);
  itkGetStringMacro(Precision);

protected:
  TensorDataObjectFilter();
  ~TensorDataObjectFilter() override = default;
  using Superclass::MakeOutput;
  DataObjectPointer MakeOutput(DataObjectPointerArraySizeType) override;
  /** Batch size >= 1 and a device that can be used now. */
  void
  VerifyPreconditions() ITKv5_CONST override;
  void
  PrintSelf(std::ostream & os, Indent indent) const override;

private:
  std::string  m_Device{ "cpu" };
  unsigned int m_BatchSize{ 32 };
  std::string  m_Precision{ "float32" };
};

} // namespace itk

#endif
