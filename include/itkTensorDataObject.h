/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkTensorDataObject_h
#define itkTensorDataObject_h

#include "itkDataObject.h"
#include "itkObjectFactory.h"

#include <ATen/core/Tensor.h>

#include <array>
#include <map>
#include <string>
#include <vector>

namespace itk {

/** Where one item (a query patch) of a TensorDataObject comes from. */
struct TensorItemMetadata
{
  int                    organ{ 0 };    ///< organ label value (BTCV 1..12)
  int                    modality{ 0 }; ///< modality id (e.g. 0 non-contrast, 1 contrast)
  int64_t                slice{ 0 };    ///< index of the axial slice along the volume's axial axis
  std::array<int64_t, 3> index{};       ///< voxel index, in the volume, of the patch's first pixel
  std::array<double, 3>  origin{};      ///< physical point (mm) of the patch's first pixel
  std::array<double, 2>  spacing{};     ///< patch pixel spacing (mm) along its columns and rows
  std::array<double, 6>  axes{};        ///< unit physical directions of the patch's columns (0-2) and rows (3-5)
};

/** \class TensorDataObject
 * \brief A pipeline data object holding named batch tensors (e.g. "image" [N, 2, P, P],
 * "low_level", "high_level", "probability") on any device, plus per-item metadata.
 *
 * It lets encoder features stay on the GPU between AGCLEncoderFilter and ASPPDecoderFilter
 * while taking part in the ITK pipeline like any data object (Modified/Update, Graft).
 * Every tensor's first dimension is the number of items; when metadata is set, that number
 * must equal the number of metadata entries (checked on every Set).
 * \ingroup AGCLSegmentation
 */
class TensorDataObject : public DataObject
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(TensorDataObject);
  using Self = TensorDataObject;
  using Superclass = DataObject;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkNewMacro(Self);
  itkTypeMacro(TensorDataObject, DataObject);

  using MetadataType = std::vector<TensorItemMetadata>;

  /** Stores (or replaces) a named tensor; its first dimension must be GetNumberOfItems() when
   *  items are already known. Marks the object modified. */
  void
  SetTensor(const std::string & name, const at::Tensor & tensor);
  /** The named tensor; itk::ExceptionObject naming the missing name otherwise. */
  const at::Tensor &
  GetTensor(const std::string & name) const;
  bool
  HasTensor(const std::string & name) const;
  void
  RemoveTensor(const std::string & name);
  std::vector<std::string>
  GetTensorNames() const;

  void
  SetMetadata(const MetadataType & metadata);
  const MetadataType &
  GetMetadata() const
  {
    return m_Metadata;
  }

  /** Items in the batch: the metadata count, else the first dimension of the tensors, else 0. */
  int64_t
  GetNumberOfItems() const;

  void
  Initialize() override;
  /** Shallow copy: the tensors are shared (no copy of their storage), the metadata copied. */
  void
  Graft(const DataObject * data) override;

protected:
  TensorDataObject() = default;
  ~TensorDataObject() override = default;
  void
  PrintSelf(std::ostream & os, Indent indent) const override;

private:
  void
  CheckItems(const std::string & name, int64_t items) const;

  std::map<std::string, at::Tensor> m_Tensors;
  MetadataType                      m_Metadata;
};

} // namespace itk

#endif
