/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkASPPDecoderFilter_h
#define itkASPPDecoderFilter_h

#include "itkProcessObject.h"
#include "itkTensorDataObject.h"

#include "agcl/ASPPDecoder.h"

#include <string>

namespace itk {

/** \class ASPPDecoderFilter
 * \brief Runs the ASPP decoder on encoder features: TensorDataObject with "low_level",
 * "high_level" and "image" [N, C, P, P] (for the patch size) in; the same metadata plus
 * "probability" [N, 1, P, P] (the organ channel of the softmax, float32) out, on the device.
 *
 * Inference only (eval mode, no gradients), in batches of BatchSize; device and shape errors
 * and LibTorch errors are itk::ExceptionObject.
 * \ingroup AGCLSegmentation
 */
class ASPPDecoderFilter : public ProcessObject
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(ASPPDecoderFilter);
  using Self = ASPPDecoderFilter;
  using Superclass = ProcessObject;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkNewMacro(Self);
  itkTypeMacro(ASPPDecoderFilter, ProcessObject);

  void
  SetInput(const TensorDataObject * features);
  const TensorDataObject *
  GetInput() const;
  TensorDataObject *
  GetOutput();

  void
  SetDecoder(const agcl::ASPPDecoder & decoder);
  itkSetStringMacro(Device);
  itkGetStringMacro(Device);
  itkSetMacro(BatchSize, unsigned int);
  itkGetConstMacro(BatchSize, unsigned int);

protected:
  ASPPDecoderFilter();
  ~ASPPDecoderFilter() override = default;
  using Superclass::MakeOutput;
  DataObjectPointer MakeOutput(DataObjectPointerArraySizeType) override;
  void
  VerifyPreconditions() ITKv5_CONST override;
  void
  GenerateData() override;
  void
  PrintSelf(std::ostream & os, Indent indent) const override;

private:
  agcl::ASPPDecoder m_Decoder{ nullptr };
  std::string       m_Device{ "cpu" };
  unsigned int      m_BatchSize{ 32 };
};

} // namespace itk

#endif
