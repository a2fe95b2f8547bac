// SWIG interface of the native part of itk_agcl (the Python package in itk_agcl/ builds the
// ITK-style API on it). Only AGCLPython.h is wrapped: non-template classes, no ITK or LibTorch.
%module(package="itk_agcl") native

%{
#define SWIG_FILE_WITH_INIT
#include "AGCLPython.h"
%}

// numpy arrays in (numpy.i from python3-numpy): (z, y, x) C-contiguous arrays of one dtype.
%include "numpy.i"
%init %{
import_array();
%}
%apply (short * IN_ARRAY3, int DIM1, int DIM2, int DIM3) { (const short * data, int nz, int ny, int nx) };
%apply (unsigned char * IN_ARRAY3, int DIM1, int DIM2, int DIM3) { (const unsigned char * data, int nz, int ny, int nx) };
%apply (float * IN_ARRAY3, int DIM1, int DIM2, int DIM3) { (const float * data, int nz, int ny, int nx) };

%include <stdint.i>
%include <std_string.i>
%include <std_vector.i>

%template(DoubleVector) std::vector<double>;
%template(Int64Vector) std::vector<int64_t>;
%template(IntVector) std::vector<int>;
%template(ImageVector) std::vector<agcl::python::Image>;
%template(StringVector) std::vector<std::string>;

// Every C++ exception becomes a RuntimeError with its message, unless a Python exception is
// already set (raised by a Python callback), which is passed on unchanged.
%exception {
  try
  {
    $action
  }
  catch (const std::exception & e)
  {
    if (!PyErr_Occurred())
      PyErr_SetString(PyExc_RuntimeError, e.what());
    SWIG_fail;
  }
}

%typemap(in) PyObject * callable, PyObject * progress, PyObject * buffer
{
  $1 = $input;
}

// Not for Python: raw ITK pointers, and reading from a raw address (Python passes buffers).
%ignore agcl::python::Image::FromBuffer;
%ignore agcl::python::Image::GetITKImage;
%ignore agcl::python::Image::FromITK;
%ignore agcl::python::Image::operator=;
%ignore agcl::python::Model::GetITKModel;
%ignore agcl::python::Model::operator=;
%ignore agcl::python::TensorView::FromTensor;
%ignore agcl::python::TensorData::GetITKObject;
%ignore agcl::python::TensorData::FromITK;
%ignore agcl::python::TensorData::operator=;

%include "AGCLPython.h"
