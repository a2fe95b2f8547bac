/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef agcl_python_AGCLPythonInternal_h
#define agcl_python_AGCLPythonInternal_h

// Helpers shared by the facade's source files (not wrapped).

#include <Python.h>

#include "AGCLPython.h"
#include "itkImage.h"

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace agcl::python::detail {

using CTImage = itk::Image<short, 3>;
using LabelImage = itk::Image<unsigned char, 3>;
using FloatImage = itk::Image<float, 3>;

/** A Python exception raised inside a callback: it is already set; the wrapper passes it on. */
class PythonErrorAlreadySet : public std::runtime_error
{
public:
  PythonErrorAlreadySet()
    : std::runtime_error("Python exception in a callback")
  {}
};

/** Releases the GIL for the lifetime of the object (long C++ work: other Python threads run
 *  meanwhile); taken back on destruction, also when an exception leaves the scope. */
class ReleasedGIL
{
public:
  ReleasedGIL()
    : m_State(PyEval_SaveThread())
  {}
  ~ReleasedGIL() { PyEval_RestoreThread(m_State); }
  ReleasedGIL(const ReleasedGIL &) = delete;
  ReleasedGIL &
  operator=(const ReleasedGIL &) = delete;

private:
  PyThreadState * m_State;
};

/** A Python exception raised by a callback that C++ called, possibly on another thread: kept
 *  until the wrapped call is back on its own thread with the GIL, then raised there. */
class CallbackError
{
public:
  CallbackError() = default;
  CallbackError(const CallbackError &) = delete;
  CallbackError &
  operator=(const CallbackError &) = delete;
  bool
  Has() const
  {
    return m_Type != nullptr;
  }
  /** With the GIL: takes the current Python error. */
  void
  Fetch()
  {
    PyErr_Fetch(&m_Type, &m_Value, &m_Traceback);
  }
  /** With the GIL, if Has(): sets the error again on this thread and throws
   *  PythonErrorAlreadySet (the SWIG wrapper passes the Python error on unchanged). */
  void
  RaiseIfAny()
  {
    if (!Has())
      return;
    PyErr_Restore(m_Type, m_Value, m_Traceback);
    m_Type = m_Value = m_Traceback = nullptr;
    throw PythonErrorAlreadySet();
  }

private:
  PyObject * m_Type = nullptr;
  PyObject * m_Value = nullptr;
  PyObject * m_Traceback = nullptr;
};

/** Calls `callable(makeArgument())` from any thread, taking the GIL for the call; false when
 *  the call raised (the error is then moved into `error`). */
template <typename TMakeArgument>
bool
CallPython(PyObject * callable, TMakeArgument makeArgument, CallbackError & error)
{
  const PyGILState_STATE state = PyGILState_Ensure();
  PyObject *             argument = makeArgument();
  PyObject *             result = argument ? PyObject_CallFunctionObjArgs(callable, argument, nullptr) : nullptr;
  Py_XDECREF(argument);
  const bool ok = result != nullptr;
  Py_XDECREF(result);
  if (!ok)
    error.Fetch();
  PyGILState_Release(state);
  return ok;
}

/** Runs `work` (an ITK pipeline update, a training) without the GIL; a failure of it becomes a
 *  std::runtime_error with its message after the GIL is back, and a Python exception raised by
 *  a callback meanwhile (PythonErrorAlreadySet, kept in `callbackError`) is raised instead. */
template <typename TWork>
void
RunWithoutGIL(TWork work, CallbackError & callbackError)
{
  bool        failed = false;
  std::string failure;
  {
    ReleasedGIL released;
    try
    {
      work();
    }
    catch (const PythonErrorAlreadySet &)
    {
      // raised below, with the GIL
    }
    catch (const itk::ExceptionObject & e)
    {
      failed = true;
      failure = e.GetDescription();
    }
    catch (const std::exception & e)
    {
      failed = true;
      failure = e.what();
    }
  }
  callbackError.RaiseIfAny();
  if (failed)
    throw std::runtime_error(failure.empty() ? "unknown error" : failure);
}

/** Set<Name>/Get<Name> of a facade class forwarding to the ITK filter in m_Impl->filter; the
 *  setter takes SetType, the getter returns GetType (strings: const std::string & in, a copy out). */
#define AGCL_PYTHON_PROPERTY_AS(Class, Name, SetType, GetType)                                                         \
  void Class::Set##Name(SetType value)                                                                                 \
  {                                                                                                                    \
    m_Impl->filter->Set##Name(value);                                                                                  \
  }                                                                                                                    \
  GetType Class::Get##Name() const                                                                                     \
  {                                                                                                                    \
    return m_Impl->filter->Get##Name();                                                                                \
  }
#define AGCL_PYTHON_PROPERTY(Class, Name, Type) AGCL_PYTHON_PROPERTY_AS(Class, Name, Type, Type)
/** The Device of a facade class (a string property). */
#define AGCL_PYTHON_DEVICE(Class) AGCL_PYTHON_PROPERTY_AS(Class, Device, const std::string &, std::string)

/** A new CPU tensor of `dtype` (a bundle dtype name: "float32", "uint8", ...) and `shape`, a copy
 *  of `buffer`: any Python object with a C-contiguous buffer of exactly the shape's byte count,
 *  checked before anything is allocated (std::invalid_argument naming `what` otherwise). Called
 *  with the GIL held. */
at::Tensor
TensorFromBuffer(const std::string &          what,
                 const std::string &          dtype,
                 const std::vector<int64_t> & shape,
                 PyObject *                   buffer);

/** Takes a filter's output image for Python after an Update: the image is disconnected from the
 *  filter (ITK's DisconnectPipeline; the filter makes a new output for its next run), so that
 *  a later Update never rewrites or frees the buffer of what Python holds. No pixel copy. */
template <typename TImage>
Image
TakeOutput(TImage * output, const std::string & pixelType)
{
  typename TImage::Pointer taken = output;
  taken->DisconnectPipeline();
  return Image::FromITK(taken.GetPointer(), pixelType);
}

/** `image`, or std::invalid_argument "`what`: no output yet (call Update)" when empty. */
inline const Image &
OutputOf(const std::optional<Image> & image, const std::string & what)
{
  if (!image)
    throw std::invalid_argument(what + ": no output yet (call Update)");
  return *image;
}

/** The organ label of a Python int: 1..255 or std::invalid_argument naming `what`. */
inline unsigned char
OrganLabel(int label, const std::string & what)
{
  if (label < 1 || label > 255)
    throw std::invalid_argument(what + ": organ label " + std::to_string(label) + " outside 1..255");
  return static_cast<unsigned char>(label);
}

/** The ITK label image of a uint8 `image`; std::invalid_argument naming `what` otherwise. */
inline LabelImage *
LabelImageOf(const Image & image, const std::string & what)
{
  if (image.GetPixelType() != "uint8")
    throw std::invalid_argument(what + ": expected a uint8 label map, got " + image.GetPixelType());
  return static_cast<LabelImage *>(image.GetITKImage());
}

/** SetAttentionMap of a facade whose Impl has `filter` and `attention` (the maps kept alive). */
template <typename TImpl>
void
SetAttentionMapOf(TImpl & impl, int organ, const Image & attention)
{
  const unsigned char label = OrganLabel(organ, "SetAttentionMap");
  LabelImage *        map = LabelImageOf(attention, "SetAttentionMap");
  impl.attention[organ] = attention;
  impl.filter->SetAttentionMap(label, map);
}

} // namespace agcl::python::detail

#endif
