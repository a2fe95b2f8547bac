/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkASPPDecoderFilter_h
#define itkASPPDecoderFilter_h

#include "itkTensorDataObjectFilter.h"

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
class ASPPDecoderFilter : public TensorDataObjectFilter
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(ASPPDecoderFilter);
  using Self = ASPPDecoderFilter;
  using Superclass = TensorDataObjectFilter;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkNewMacro(Self);
  itkTypeMacro(ASPPDecoderFilter, TensorDataObjectFilter);

  void
  SetDecoder(const agcl::ASPPDecoder & decoder);

protected:
  ASPPDecoderFilter() = default;
  ~ASPPDecoderFilter() override = default;
  void
  VerifyPreconditions() ITKv5_CONST override;
  void
  GenerateData() override;
  void
  PrintSelf(std::ostream & os, Indent indent) const override;

private:
  agcl::ASPPDecoder m_Decoder{ nullptr };
};

} // namespace itk

#endif
