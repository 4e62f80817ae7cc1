/* Optional C accelerator for erl_interop.term (External Term Format, erts User's Guide).
 *
 * Owns: a Decoder and an Encoder object that do the hot paths of decode.py / encode.py for the
 * common tags and types. Must not: produce a result the pure-Python codec would not produce.
 *
 * The contract with the Python modules that build these objects:
 *
 * - Decoder.decode(data, offset, atom_cache) returns (term, next_offset), or None when anything is
 *   unusual (malformed input, a bad atom, duplicate map keys, a Python helper raising...). On None
 *   the caller runs the pure-Python decoder from the start, which produces the value or the exact
 *   DecodeError (message and offset). Rare tags inside a well-formed term are handed to the
 *   Python general decoder for that sub-term. Atoms are built by the Python memo
 *   ``_atom_from_raw`` so they are exactly the Python decoder's atoms (remembered bytes included).
 * - Encoder.encode(term, out, flags) appends the default-mode encoding to the bytearray ``out`` and
 *   sets flags[0] / flags[1] like ``_fast_encode``; any value it does not handle plainly (other
 *   types, subclasses, out-of-range fields, non-finite floats, lone surrogates, maps whose keys may
 *   collide) is handed to ``_fast_encode`` for that sub-term, which writes it or raises.
 *
 * Hostile input: every read is bounds-checked against the buffer end; no allocation is sized by
 * a declared count before checking it against the bytes left; C recursion stops at
 * FAST_DEPTH (48) containers, deeper sub-terms go to the iterative Python code.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <string.h>

#define FAST_DEPTH 48
#define ATOM_SLOTS 64

/* Offset of a __slots__ member (a T_OBJECT_EX member descriptor) of a type, or -1. */
static Py_ssize_t
slot_offset(PyObject *type, const char *name)
{
    PyObject *d = PyObject_GetAttrString(type, name);
    Py_ssize_t off = -1;
    if (d == NULL)
        return -1;
    if (Py_TYPE(d) == &PyMemberDescr_Type) {
        PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
        if (m->type == T_OBJECT_EX)
            off = m->offset;
    }
    Py_DECREF(d);
    if (off < 0)
        PyErr_Format(PyExc_TypeError, "%s is not a __slots__ member", name);
    return off;
}

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

/* ------------------------------------------------------------------------------------------ */
/* Decoder                                                                                    */

typedef struct {
    PyObject_HEAD
    PyObject *Atom, *Map, *Pid, *Reference, *Port;
    PyObject *plain_keys;    /* frozenset of types usable as Map keys as they are */
    PyObject *atom_from_raw; /* raw atom bytes -> Atom | bool (memoised, may raise) */
    PyObject *finish_map;    /* (items, start) -> Map */
    PyObject *finish_list;   /* (items_with_tail, pos) -> list | ImproperList */
    PyObject *general;       /* (data, pos, cache, max_depth, atoms) -> (term, pos) */
    long max_depth;
    Py_ssize_t o_name, o_map_d, o_map_keys, o_map_hash;
    Py_ssize_t o_pid[4];  /* node, id, serial, creation */
    Py_ssize_t o_ref[3];  /* node, creation, ids */
    Py_ssize_t o_port[4]; /* node, id, creation, v4 */
} Decoder;

typedef struct {
    Py_ssize_t off, len;
    PyObject *value;
} AtomSlot;

typedef struct {
    Decoder *d;
    const unsigned char *buf;
    Py_ssize_t end;
    PyObject *data;
    PyObject *cache;
    int nslots;
    AtomSlot slots[ATOM_SLOTS];
} DState;

static uint32_t
rd_u32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static uint64_t
rd_u64(const unsigned char *p)
{
    return ((uint64_t)rd_u32(p) << 32) | (uint64_t)rd_u32(p + 4);
}

/* A declared 32-bit count or length, or -1 if it cannot be a size here (32-bit Py_ssize_t). */
static Py_ssize_t
rd_len(const unsigned char *p)
{
    uint32_t v = rd_u32(p);
#if SIZEOF_SIZE_T > 4
    return (Py_ssize_t)v;
#else
    return v > (uint32_t)(PY_SSIZE_T_MAX / 4) ? -1 : (Py_ssize_t)v;
#endif
}

/* A fresh instance of a __slots__ class without running __init__ (like object.__new__). */
static PyObject *
new_instance(PyObject *type)
{
    PyObject *args = PyTuple_New(0);
    PyObject *obj;
    if (args == NULL)
        return NULL;
    obj = PyBaseObject_Type.tp_new((PyTypeObject *)type, args, NULL);
    Py_DECREF(args);
    return obj;
}

/* Store a new reference into a freshly made object's slot (steals v). */
static void
set_slot(PyObject *obj, Py_ssize_t off, PyObject *v)
{
    PyObject *old = SLOT(obj, off);
    SLOT(obj, off) = v;
    Py_XDECREF(old);
}

static PyObject *dec(DState *s, Py_ssize_t *pos, int depth);

/* The value of the atom encoding at pos (tag 119/115/118/100): Atom or bool (new reference). */
static PyObject *
dec_atom(DState *s, Py_ssize_t *pos)
{
    const unsigned char *b = s->buf;
    Py_ssize_t p = *pos, q, n;
    unsigned char tag = b[p];
    PyObject *raw, *v;
    int i;
    if (tag == 119 || tag == 115) {
        if (p + 2 > s->end)
            return NULL;
        q = p + 2 + b[p + 1];
    }
    else {
        if (p + 3 > s->end)
            return NULL;
        q = p + 3 + (((Py_ssize_t)b[p + 1] << 8) | b[p + 2]);
    }
    if (q > s->end)
        return NULL;
    n = q - p;
    for (i = 0; i < s->nslots; i++) {
        AtomSlot *a = &s->slots[i];
        if (a->len == n && memcmp(b + a->off, b + p, (size_t)n) == 0) {
            *pos = q;
            Py_INCREF(a->value);
            return a->value;
        }
    }
    raw = PyBytes_FromStringAndSize((const char *)b + p, n);
    if (raw == NULL)
        return NULL;
    v = PyObject_CallOneArg(s->d->atom_from_raw, raw);
    Py_DECREF(raw);
    if (v == NULL)
        return NULL;
    if (s->nslots < ATOM_SLOTS) {
        AtomSlot *a = &s->slots[s->nslots++];
        a->off = p;
        a->len = n;
        Py_INCREF(v);
        a->value = v;
    }
    *pos = q;
    return v;
}

/* ATOM_CACHE_REF (82): the idx-th atom of the distribution header's refs (an Atom). */
static PyObject *
dec_cached_atom(DState *s, Py_ssize_t *pos)
{
    Py_ssize_t p = *pos, len;
    PyObject *atom;
    if (s->cache == Py_None || p + 2 > s->end)
        return NULL;
    len = PySequence_Size(s->cache);
    if (len < 0 || s->buf[p + 1] >= len)
        return NULL;
    atom = PySequence_GetItem(s->cache, s->buf[p + 1]);
    if (atom == NULL)
        return NULL;
    if ((PyObject *)Py_TYPE(atom) != s->d->Atom) {
        Py_DECREF(atom);
        return NULL;
    }
    *pos = p + 2;
    return atom;
}

/* An atom that must stay an Atom (pid/ref/port node); a true/false node goes to Python. */
static PyObject *
dec_node(DState *s, Py_ssize_t *pos)
{
    PyObject *v;
    unsigned char tag;
    if (*pos >= s->end)
        return NULL;
    tag = s->buf[*pos];
    if (tag == 82)
        return dec_cached_atom(s, pos);
    if (tag != 119 && tag != 118 && tag != 100 && tag != 115)
        return NULL;
    v = dec_atom(s, pos);
    if (v != NULL && (PyObject *)Py_TYPE(v) != s->d->Atom) {
        Py_DECREF(v);
        return NULL;
    }
    return v;
}

static PyObject *
dec_u32(const unsigned char *p)
{
    return PyLong_FromUnsignedLong(rd_u32(p));
}

static PyObject *
empty_map(Decoder *d, PyObject *dict)
{
    PyObject *m = new_instance(d->Map);
    if (m == NULL) {
        Py_DECREF(dict);
        return NULL;
    }
    set_slot(m, d->o_map_d, dict);
    Py_INCREF(Py_None);
    set_slot(m, d->o_map_keys, Py_None);
    Py_INCREF(Py_None);
    set_slot(m, d->o_map_hash, Py_None);
    return m;
}

/* Hand the sub-term at pos to the Python general decoder. */
static PyObject *
dec_general(DState *s, Py_ssize_t *pos, int depth)
{
    PyObject *atoms, *r, *v;
    Py_ssize_t q;
    atoms = PyDict_New();
    if (atoms == NULL)
        return NULL;
    r = PyObject_CallFunction(s->d->general, "OnOlO", s->data, *pos, s->cache,
                              s->d->max_depth - depth, atoms);
    Py_DECREF(atoms);
    if (r == NULL)
        return NULL;
    if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2) {
        Py_DECREF(r);
        return NULL;
    }
    q = PyLong_AsSsize_t(PyTuple_GET_ITEM(r, 1));
    if (q < 0 || q > s->end) {
        Py_DECREF(r);
        return NULL;
    }
    v = PyTuple_GET_ITEM(r, 0);
    Py_INCREF(v);
    Py_DECREF(r);
    *pos = q;
    return v;
}

static PyObject *
dec_map(DState *s, Py_ssize_t *pos, int depth)
{
    Decoder *d = s->d;
    Py_ssize_t start = *pos, p = start, k, i;
    PyObject *items, *dict, *v;
    int plain = 1;
    if (p + 5 > s->end)
        return NULL;
    k = rd_len(s->buf + p + 1);
    p += 5;
    if (k < 0)
        return NULL;
    if (k == 0) {
        dict = PyDict_New();
        if (dict == NULL)
            return NULL;
        *pos = p;
        return empty_map(d, dict);
    }
    if (2 * k > s->end - p)
        return NULL;
    items = PyList_New(2 * k);
    if (items == NULL)
        return NULL;
    for (i = 0; i < 2 * k; i++) {
        v = dec(s, &p, depth + 1);
        if (v == NULL) {
            Py_DECREF(items);
            return NULL;
        }
        PyList_SET_ITEM(items, i, v);
        if (!(i & 1) && plain) {
            int r = PySet_Contains(d->plain_keys, (PyObject *)Py_TYPE(v));
            if (r < 0) {
                Py_DECREF(items);
                return NULL;
            }
            plain = r;
        }
    }
    if (plain) {
#if PY_VERSION_HEX < 0x030D0000
        dict = _PyDict_NewPresized(k);
#else
        dict = PyDict_New();
#endif
        if (dict == NULL) {
            Py_DECREF(items);
            return NULL;
        }
        for (i = 0; i < k; i++) {
            PyObject *key = PyList_GET_ITEM(items, 2 * i);
            int rc;
#if PY_VERSION_HEX < 0x030D0000
            if ((PyObject *)Py_TYPE(key) == d->Atom && SLOT(key, d->o_name) != NULL &&
                PyUnicode_CheckExact(SLOT(key, d->o_name))) {
                /* Atom.__hash__ is hash(self.name): skip the Python-level call. */
                Py_hash_t h = PyObject_Hash(SLOT(key, d->o_name));
                rc = h == -1 ? -1 : _PyDict_SetItem_KnownHash(dict, key, PyList_GET_ITEM(items, 2 * i + 1), h);
            }
            else
#endif
                rc = PyDict_SetItem(dict, key, PyList_GET_ITEM(items, 2 * i + 1));
            if (rc < 0) {
                Py_DECREF(dict);
                Py_DECREF(items);
                return NULL;
            }
        }
        Py_DECREF(items);
        if (PyDict_GET_SIZE(dict) != k) { /* duplicate keys: Python reports it */
            Py_DECREF(dict);
            return NULL;
        }
        *pos = p;
        return empty_map(d, dict);
    }
    v = PyObject_CallFunction(d->finish_map, "On", items, start);
    Py_DECREF(items);
    if (v == NULL)
        return NULL;
    *pos = p;
    return v;
}

static PyObject *
dec_list(DState *s, Py_ssize_t *pos, int depth)
{
    Py_ssize_t p = *pos, k, i;
    PyObject *items, *v, *tail;
    if (p + 5 > s->end)
        return NULL;
    k = rd_len(s->buf + p + 1);
    p += 5;
    if (k < 0 || k + 1 > s->end - p)
        return NULL;
    items = PyList_New(k);
    if (items == NULL)
        return NULL;
    for (i = 0; i < k; i++) {
        v = dec(s, &p, depth + 1);
        if (v == NULL) {
            Py_DECREF(items);
            return NULL;
        }
        PyList_SET_ITEM(items, i, v);
    }
    tail = dec(s, &p, depth + 1);
    if (tail == NULL) {
        Py_DECREF(items);
        return NULL;
    }
    if (PyList_CheckExact(tail) && PyList_GET_SIZE(tail) == 0) {
        Py_DECREF(tail);
        *pos = p;
        return items;
    }
    if (PyList_Append(items, tail) < 0) {
        Py_DECREF(tail);
        Py_DECREF(items);
        return NULL;
    }
    Py_DECREF(tail);
    v = PyObject_CallFunction(s->d->finish_list, "On", items, p);
    Py_DECREF(items);
    if (v != NULL)
        *pos = p;
    return v;
}

static PyObject *
dec(DState *s, Py_ssize_t *pos, int depth)
{
    const unsigned char *b = s->buf;
    Py_ssize_t p = *pos, end = s->end, n, q, i;
    Decoder *d = s->d;
    PyObject *v, *node, *x;
    unsigned char tag;

    if (p >= end)
        return NULL;
    tag = b[p];
    switch (tag) {
    case 119: case 115: case 118: case 100:
        return dec_atom(s, pos);
    case 97: /* SMALL_INTEGER_EXT */
        if (p + 2 > end)
            return NULL;
        *pos = p + 2;
        return PyLong_FromLong(b[p + 1]);
    case 98: /* INTEGER_EXT */
        if (p + 5 > end)
            return NULL;
        *pos = p + 5;
        return PyLong_FromLong((long)(int32_t)rd_u32(b + p + 1));
    case 109: /* BINARY_EXT */
        if (p + 5 > end)
            return NULL;
        n = rd_len(b + p + 1);
        if (n < 0 || n > end - p - 5)
            return NULL;
        *pos = p + 5 + n;
        return PyBytes_FromStringAndSize((const char *)b + p + 5, n);
    case 104: case 105: /* SMALL_TUPLE_EXT, LARGE_TUPLE_EXT */
        if (depth >= FAST_DEPTH)
            return dec_general(s, pos, depth);
        if (tag == 104) {
            if (p + 2 > end)
                return NULL;
            n = b[p + 1];
            p += 2;
        }
        else {
            if (p + 5 > end)
                return NULL;
            n = rd_len(b + p + 1);
            p += 5;
        }
        if (n < 0 || n > end - p)
            return NULL;
        v = PyTuple_New(n);
        if (v == NULL)
            return NULL;
        for (i = 0; i < n; i++) {
            x = dec(s, &p, depth + 1);
            if (x == NULL) {
                Py_DECREF(v);
                return NULL;
            }
            PyTuple_SET_ITEM(v, i, x);
        }
        *pos = p;
        return v;
    case 116: /* MAP_EXT */
        if (depth >= FAST_DEPTH)
            return dec_general(s, pos, depth);
        return dec_map(s, pos, depth);
    case 106: /* NIL_EXT */
        *pos = p + 1;
        return PyList_New(0);
    case 108: /* LIST_EXT */
        if (depth >= FAST_DEPTH)
            return dec_general(s, pos, depth);
        return dec_list(s, pos, depth);
    case 107: /* STRING_EXT */
        if (p + 3 > end)
            return NULL;
        n = ((Py_ssize_t)b[p + 1] << 8) | b[p + 2];
        if (n > end - p - 3)
            return NULL;
        v = PyList_New(n);
        if (v == NULL)
            return NULL;
        for (i = 0; i < n; i++) {
            x = PyLong_FromLong(b[p + 3 + i]);
            if (x == NULL) {
                Py_DECREF(v);
                return NULL;
            }
            PyList_SET_ITEM(v, i, x);
        }
        *pos = p + 3 + n;
        return v;
    case 70: { /* NEW_FLOAT_EXT */
        double f;
        if (p + 9 > end)
            return NULL;
        f = PyFloat_Unpack8((const char *)b + p + 1, 0);
        if (f == -1.0 && PyErr_Occurred())
            return NULL;
        if (!isfinite(f))
            return NULL;
        *pos = p + 9;
        return PyFloat_FromDouble(f);
    }
    case 110: case 111: { /* SMALL_BIG_EXT, LARGE_BIG_EXT */
#if PY_VERSION_HEX >= 0x030D0000
        return dec_general(s, pos, depth);
#else
        int sign;
        Py_ssize_t start;
        if (tag == 110) {
            if (p + 3 > end)
                return NULL;
            n = b[p + 1];
            sign = b[p + 2];
            start = p + 3;
        }
        else {
            if (p + 6 > end)
                return NULL;
            n = rd_len(b + p + 1);
            sign = b[p + 5];
            start = p + 6;
        }
        if (n < 0 || n > end - start || sign > 1)
            return NULL;
        v = _PyLong_FromByteArray(b + start, (size_t)n, 1, 0);
        if (v == NULL)
            return NULL;
        if (sign) {
            x = PyNumber_Negative(v);
            Py_DECREF(v);
            v = x;
        }
        if (v != NULL)
            *pos = start + n;
        return v;
#endif
    }
    case 82: { /* ATOM_CACHE_REF in value position: true/false become bools */
        PyObject *name;
        v = dec_cached_atom(s, pos);
        if (v == NULL)
            return NULL;
        name = SLOT(v, d->o_name);
        if (name != NULL && PyUnicode_CheckExact(name)) {
            if (PyUnicode_CompareWithASCIIString(name, "true") == 0) {
                Py_DECREF(v);
                Py_RETURN_TRUE;
            }
            if (PyUnicode_CompareWithASCIIString(name, "false") == 0) {
                Py_DECREF(v);
                Py_RETURN_FALSE;
            }
        }
        return v;
    }
    case 88: { /* NEW_PID_EXT */
        q = p + 1;
        node = dec_node(s, &q);
        if (node == NULL)
            return NULL;
        if (q + 12 > end || (v = new_instance(d->Pid)) == NULL) {
            Py_DECREF(node);
            return NULL;
        }
        set_slot(v, d->o_pid[0], node);
        for (i = 0; i < 3; i++) {
            x = dec_u32(b + q + 4 * i);
            if (x == NULL) {
                Py_DECREF(v);
                return NULL;
            }
            set_slot(v, d->o_pid[1 + i], x);
        }
        *pos = q + 12;
        return v;
    }
    case 90: { /* NEWER_REFERENCE_EXT */
        PyObject *ids;
        if (p + 3 > end)
            return NULL;
        n = ((Py_ssize_t)b[p + 1] << 8) | b[p + 2];
        if (n < 1 || n > 5)
            return NULL;
        q = p + 3;
        node = dec_node(s, &q);
        if (node == NULL)
            return NULL;
        if (q + 4 + 4 * n > end || (v = new_instance(d->Reference)) == NULL) {
            Py_DECREF(node);
            return NULL;
        }
        set_slot(v, d->o_ref[0], node);
        x = dec_u32(b + q);
        if (x == NULL) {
            Py_DECREF(v);
            return NULL;
        }
        set_slot(v, d->o_ref[1], x);
        ids = PyTuple_New(n);
        if (ids == NULL) {
            Py_DECREF(v);
            return NULL;
        }
        set_slot(v, d->o_ref[2], ids);
        for (i = 0; i < n; i++) {
            x = dec_u32(b + q + 4 + 4 * i);
            if (x == NULL) {
                Py_DECREF(v);
                return NULL;
            }
            PyTuple_SET_ITEM(ids, i, x);
        }
        *pos = q + 4 + 4 * n;
        return v;
    }
    case 89: case 120: { /* NEW_PORT_EXT, V4_PORT_EXT */
        Py_ssize_t idlen = tag == 89 ? 4 : 8;
        q = p + 1;
        node = dec_node(s, &q);
        if (node == NULL)
            return NULL;
        if (q + idlen + 4 > end || (v = new_instance(d->Port)) == NULL) {
            Py_DECREF(node);
            return NULL;
        }
        set_slot(v, d->o_port[0], node);
        x = tag == 89 ? dec_u32(b + q) : PyLong_FromUnsignedLongLong(rd_u64(b + q));
        if (x == NULL) {
            Py_DECREF(v);
            return NULL;
        }
        set_slot(v, d->o_port[1], x);
        x = dec_u32(b + q + idlen);
        if (x == NULL) {
            Py_DECREF(v);
            return NULL;
        }
        set_slot(v, d->o_port[2], x);
        x = tag == 89 ? Py_False : Py_True;
        Py_INCREF(x);
        set_slot(v, d->o_port[3], x);
        *pos = q + idlen + 4;
        return v;
    }
    default:
        return dec_general(s, pos, depth);
    }
}

static PyObject *
Decoder_decode(Decoder *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    DState *s;
    Py_ssize_t offset, pos;
    PyObject *v, *result = NULL;
    int i;

    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "decode(data, offset, atom_cache)");
        return NULL;
    }
    offset = PyLong_AsSsize_t(args[1]);
    if (offset == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    s = PyMem_Malloc(sizeof(DState));
    if (s == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    s->d = self;
    s->buf = view.buf;
    s->end = view.len;
    s->data = args[0];
    s->cache = args[2];
    s->nslots = 0;
    if (offset >= 0 && offset < view.len) {
        pos = offset;
        v = dec(s, &pos, 0);
        if (v != NULL) {
            result = Py_BuildValue("(Nn)", v, pos);
        }
    }
    for (i = 0; i < s->nslots; i++)
        Py_DECREF(s->slots[i].value);
    PyMem_Free(s);
    PyBuffer_Release(&view);
    if (result == NULL) {
        /* KeyboardInterrupt and the like (not an Exception) propagate. */
        if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception))
            return NULL;
        /* Anything unusual: the pure-Python decoder gives the value or the exact error. */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    return result;
}

static int
Decoder_init(Decoder *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"Atom", "Map", "Pid", "Reference", "Port", "plain_keys", "atom_from_raw",
                             "finish_map", "finish_list", "general", "max_depth", NULL};
    PyObject *o[10];
    int i;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOOOOl", kwlist, &o[0], &o[1], &o[2], &o[3], &o[4],
                                     &o[5], &o[6], &o[7], &o[8], &o[9], &self->max_depth))
        return -1;
    for (i = 0; i < 10; i++)
        Py_INCREF(o[i]);
    Py_XSETREF(self->Atom, o[0]);
    Py_XSETREF(self->Map, o[1]);
    Py_XSETREF(self->Pid, o[2]);
    Py_XSETREF(self->Reference, o[3]);
    Py_XSETREF(self->Port, o[4]);
    Py_XSETREF(self->plain_keys, o[5]);
    Py_XSETREF(self->atom_from_raw, o[6]);
    Py_XSETREF(self->finish_map, o[7]);
    Py_XSETREF(self->finish_list, o[8]);
    Py_XSETREF(self->general, o[9]);
    if (!PyType_Check(self->Atom) || !PyType_Check(self->Map) || !PyType_Check(self->Pid) ||
        !PyType_Check(self->Reference) || !PyType_Check(self->Port) || !PyAnySet_Check(self->plain_keys)) {
        PyErr_SetString(PyExc_TypeError, "Decoder: bad types");
        return -1;
    }
    if ((self->o_name = slot_offset(self->Atom, "name")) < 0 ||
        (self->o_map_d = slot_offset(self->Map, "_d")) < 0 ||
        (self->o_map_keys = slot_offset(self->Map, "_keys")) < 0 ||
        (self->o_map_hash = slot_offset(self->Map, "_hash")) < 0 ||
        (self->o_pid[0] = slot_offset(self->Pid, "node")) < 0 ||
        (self->o_pid[1] = slot_offset(self->Pid, "id")) < 0 ||
        (self->o_pid[2] = slot_offset(self->Pid, "serial")) < 0 ||
        (self->o_pid[3] = slot_offset(self->Pid, "creation")) < 0 ||
        (self->o_ref[0] = slot_offset(self->Reference, "node")) < 0 ||
        (self->o_ref[1] = slot_offset(self->Reference, "creation")) < 0 ||
        (self->o_ref[2] = slot_offset(self->Reference, "ids")) < 0 ||
        (self->o_port[0] = slot_offset(self->Port, "node")) < 0 ||
        (self->o_port[1] = slot_offset(self->Port, "id")) < 0 ||
        (self->o_port[2] = slot_offset(self->Port, "creation")) < 0 ||
        (self->o_port[3] = slot_offset(self->Port, "v4")) < 0)
        return -1;
    return 0;
}

static int
Decoder_traverse(Decoder *self, visitproc visit, void *arg)
{
    Py_VISIT(self->Atom);
    Py_VISIT(self->Map);
    Py_VISIT(self->Pid);
    Py_VISIT(self->Reference);
    Py_VISIT(self->Port);
    Py_VISIT(self->plain_keys);
    Py_VISIT(self->atom_from_raw);
    Py_VISIT(self->finish_map);
    Py_VISIT(self->finish_list);
    Py_VISIT(self->general);
    return 0;
}

static int
Decoder_clear(Decoder *self)
{
    Py_CLEAR(self->Atom);
    Py_CLEAR(self->Map);
    Py_CLEAR(self->Pid);
    Py_CLEAR(self->Reference);
    Py_CLEAR(self->Port);
    Py_CLEAR(self->plain_keys);
    Py_CLEAR(self->atom_from_raw);
    Py_CLEAR(self->finish_map);
    Py_CLEAR(self->finish_list);
    Py_CLEAR(self->general);
    return 0;
}

static void
Decoder_dealloc(Decoder *self)
{
    PyObject_GC_UnTrack(self);
    Decoder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Decoder_methods[] = {
    {"decode", (PyCFunction)(void (*)(void))Decoder_decode, METH_FASTCALL,
     "decode(data, offset, atom_cache) -> (term, next_offset) | None (None: use the Python decoder)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "erl_interop.term._speedups.Decoder",
    .tp_basicsize = sizeof(Decoder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "ETF decoder for the common tags; see decode.py.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Decoder_init,
    .tp_traverse = (traverseproc)Decoder_traverse,
    .tp_clear = (inquiry)Decoder_clear,
    .tp_dealloc = (destructor)Decoder_dealloc,
    .tp_methods = Decoder_methods,
};

/* ------------------------------------------------------------------------------------------ */
/* Encoder                                                                                    */

typedef struct {
    PyObject_HEAD
    PyObject *Atom, *Map, *Pid, *Reference, *Port;
    PyObject *atom_slow;   /* (atom, mode) -> bytes, caches _ext */
    PyObject *fast_encode; /* (xs, out, depth, flags) -> None: the Python fast encoder */
    Py_ssize_t o_ext, o_old, o_map_d, o_map_keys;
    Py_ssize_t o_pid[4];
    Py_ssize_t o_ref[3];
    Py_ssize_t o_port[4];
} Encoder;

typedef struct {
    Encoder *e;
    PyObject *out;   /* the caller's bytearray */
    PyObject *flags; /* the caller's [latin1_atom_written, bool_written] */
    char *buf;
    Py_ssize_t len, cap;
    int saw_old, saw_bool;
    char stack_buf[2048];
} EState;

static int
e_grow(EState *s, Py_ssize_t need)
{
    Py_ssize_t cap = s->cap;
    char *nb;
    if (need > PY_SSIZE_T_MAX / 2 - s->len) {
        PyErr_NoMemory();
        return -1;
    }
    while (cap < s->len + need)
        cap *= 2;
    if (s->buf == s->stack_buf) {
        nb = PyMem_Malloc(cap);
        if (nb != NULL)
            memcpy(nb, s->buf, s->len);
    }
    else {
        nb = PyMem_Realloc(s->buf, cap);
    }
    if (nb == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    s->buf = nb;
    s->cap = cap;
    return 0;
}

#define E_NEED(s, n) (((s)->len + (n) <= (s)->cap) ? 0 : e_grow((s), (n)))

static int
e_put(EState *s, const void *p, Py_ssize_t n)
{
    if (E_NEED(s, n) < 0)
        return -1;
    memcpy(s->buf + s->len, p, (size_t)n);
    s->len += n;
    return 0;
}

static void
wr_u32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static int
e_hdr(EState *s, unsigned char tag, Py_ssize_t n)
{
    if (E_NEED(s, 5) < 0)
        return -1;
    s->buf[s->len] = (char)tag;
    wr_u32(s->buf + s->len + 1, (uint32_t)n);
    s->len += 5;
    return 0;
}

/* Move what is buffered into the caller's bytearray (before Python writes to it, and at the end). */
static int
e_flush(EState *s)
{
    Py_ssize_t old;
    if (s->len == 0)
        return 0;
    old = PyByteArray_GET_SIZE(s->out);
    if (PyByteArray_Resize(s->out, old + s->len) < 0)
        return -1;
    memcpy(PyByteArray_AS_STRING(s->out) + old, s->buf, (size_t)s->len);
    s->len = 0;
    return 0;
}

/* Hand x to the Python fast encoder, as an element met at this depth. */
static int
e_python(EState *s, PyObject *x, int depth)
{
    PyObject *xs, *r;
    if (e_flush(s) < 0)
        return -1;
    xs = PyTuple_Pack(1, x);
    if (xs == NULL)
        return -1;
    r = PyObject_CallFunction(s->e->fast_encode, "OOiO", xs, s->out, depth, s->flags);
    Py_DECREF(xs);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* An Atom in the default mode: its cached encoding, else _atom_slow (which fills the cache). */
static int
e_atom(EState *s, PyObject *x)
{
    PyObject *e = SLOT(x, s->e->o_ext);
    int rc;
    if (e != NULL && e != Py_None && PyBytes_CheckExact(e))
        return e_put(s, PyBytes_AS_STRING(e), PyBytes_GET_SIZE(e));
    e = PyObject_CallFunction(s->e->atom_slow, "Oi", x, 0);
    if (e == NULL)
        return -1;
    if (!PyBytes_CheckExact(e) || PyBytes_GET_SIZE(e) < 1) {
        Py_DECREF(e);
        PyErr_SetString(PyExc_TypeError, "_atom_slow must return bytes");
        return -1;
    }
    if (PyBytes_AS_STRING(e)[0] == 100 || PyBytes_AS_STRING(e)[0] == 115)
        s->saw_old = 1;
    rc = e_put(s, PyBytes_AS_STRING(e), PyBytes_GET_SIZE(e));
    Py_DECREF(e);
    return rc;
}

/* An exact int in 0..max, else -1 (no exception set). */
static long long
u_field(PyObject *x, unsigned long long max)
{
    int overflow;
    long long v;
    if (x == NULL || !PyLong_CheckExact(x))
        return -1;
    v = PyLong_AsLongLongAndOverflow(x, &overflow);
    if (overflow || v < 0 || (unsigned long long)v > max) {
        PyErr_Clear();
        return -1;
    }
    return v;
}

static int enc(EState *s, PyObject *x, int depth);

/* Pid / Reference / Port in their plain forms; returns 1 if written, 0 to hand to Python. */
static int
e_identifier(EState *s, PyObject *x, PyTypeObject *t)
{
    Encoder *e = s->e;
    PyObject *node;
    long long f[6];
    Py_ssize_t i, n;
    char tmp[32];
    if ((PyObject *)t == e->Pid) {
        node = SLOT(x, e->o_pid[0]);
        for (i = 0; i < 3; i++)
            if ((f[i] = u_field(SLOT(x, e->o_pid[1 + i]), 0xFFFFFFFFULL)) < 0)
                return 0;
        if (node == NULL || (PyObject *)Py_TYPE(node) != e->Atom)
            return 0;
        if (e_put(s, "X", 1) < 0 || e_atom(s, node) < 0)
            return -1;
        for (i = 0; i < 3; i++)
            wr_u32(tmp + 4 * i, (uint32_t)f[i]);
        return e_put(s, tmp, 12) < 0 ? -1 : 1;
    }
    if ((PyObject *)t == e->Reference) {
        PyObject *ids = SLOT(x, e->o_ref[2]);
        node = SLOT(x, e->o_ref[0]);
        if (ids == NULL || !PyTuple_CheckExact(ids) || node == NULL || (PyObject *)Py_TYPE(node) != e->Atom)
            return 0;
        n = PyTuple_GET_SIZE(ids);
        if (n < 1 || n > 5)
            return 0;
        if ((f[0] = u_field(SLOT(x, e->o_ref[1]), 0xFFFFFFFFULL)) < 0)
            return 0;
        for (i = 0; i < n; i++)
            if ((f[1 + i] = u_field(PyTuple_GET_ITEM(ids, i), 0xFFFFFFFFULL)) < 0)
                return 0;
        tmp[0] = 90;
        tmp[1] = 0;
        tmp[2] = (char)n;
        if (e_put(s, tmp, 3) < 0 || e_atom(s, node) < 0)
            return -1;
        for (i = 0; i <= n; i++)
            wr_u32(tmp + 4 * i, (uint32_t)f[i]);
        return e_put(s, tmp, 4 * (n + 1)) < 0 ? -1 : 1;
    }
    if ((PyObject *)t == e->Port) {
        PyObject *v4 = SLOT(x, e->o_port[3]);
        node = SLOT(x, e->o_port[0]);
        if (node == NULL || (PyObject *)Py_TYPE(node) != e->Atom || (v4 != Py_True && v4 != Py_False))
            return 0;
        if ((f[0] = u_field(SLOT(x, e->o_port[1]), 0xFFFFFFFFFFFFFFFFULL >> 1)) < 0)
            return 0;
        if ((f[1] = u_field(SLOT(x, e->o_port[2]), 0xFFFFFFFFULL)) < 0)
            return 0;
        if (f[0] <= 0x0FFFFFFF && v4 == Py_False) {
            if (e_put(s, "Y", 1) < 0 || e_atom(s, node) < 0)
                return -1;
            wr_u32(tmp, (uint32_t)f[0]);
            wr_u32(tmp + 4, (uint32_t)f[1]);
            return e_put(s, tmp, 8) < 0 ? -1 : 1;
        }
        if (e_put(s, "x", 1) < 0 || e_atom(s, node) < 0)
            return -1;
        wr_u32(tmp, (uint32_t)((unsigned long long)f[0] >> 32));
        wr_u32(tmp + 4, (uint32_t)f[0]);
        wr_u32(tmp + 8, (uint32_t)f[1]);
        return e_put(s, tmp, 12) < 0 ? -1 : 1;
    }
    return 0;
}

static int e_python(EState *s, PyObject *x, int depth);

/* SMALL_BIG_EXT / LARGE_BIG_EXT (uses CPython's private int <-> bytes API of 3.11/3.12). */
static int
e_big(EState *s, PyObject *x, int depth)
{
#if PY_VERSION_HEX >= 0x030D0000
    return e_python(s, x, depth);
#else
    PyObject *mag;
    int sign = 0, rc;
    size_t bits;
    Py_ssize_t n;
    mag = PyNumber_Absolute(x);
    if (mag == NULL)
        return -1;
    sign = _PyLong_Sign(x) < 0;
    bits = _PyLong_NumBits(mag);
    if (bits == (size_t)-1 && PyErr_Occurred()) {
        Py_DECREF(mag);
        return -1;
    }
    n = (Py_ssize_t)((bits + 7) >> 3);
    if (n < 256) {
        rc = E_NEED(s, 3 + n);
        if (rc == 0) {
            s->buf[s->len] = 110;
            s->buf[s->len + 1] = (char)n;
            s->buf[s->len + 2] = (char)sign;
            rc = _PyLong_AsByteArray((PyLongObject *)mag, (unsigned char *)s->buf + s->len + 3, n, 1, 0);
            if (rc == 0)
                s->len += 3 + n;
        }
    }
    else {
        rc = E_NEED(s, 6 + n);
        if (rc == 0) {
            s->buf[s->len] = 111;
            wr_u32(s->buf + s->len + 1, (uint32_t)n);
            s->buf[s->len + 5] = (char)sign;
            rc = _PyLong_AsByteArray((PyLongObject *)mag, (unsigned char *)s->buf + s->len + 6, n, 1, 0);
            if (rc == 0)
                s->len += 6 + n;
        }
    }
    Py_DECREF(mag);
    return rc;
#endif
}

/* The elements of a dict in iteration order (keys and values alternating). */
static int
e_dict_items(EState *s, PyObject *dict, int depth)
{
    Py_ssize_t i = 0;
    PyObject *k, *v;
    int rc = 0;
    while (PyDict_Next(dict, &i, &k, &v)) {
        Py_INCREF(k);
        Py_INCREF(v);
        rc = enc(s, k, depth);
        if (rc == 0)
            rc = enc(s, v, depth);
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* _keys_stay_distinct: key types within {Atom, int, bytes, float, Pid, Reference, Port} or all str. */
static int
keys_stay_distinct(Encoder *e, PyObject *dict)
{
    Py_ssize_t i = 0;
    PyObject *k, *v;
    int all_str = 1, all_distinct = 1;
    while (PyDict_Next(dict, &i, &k, &v)) {
        PyObject *t = (PyObject *)Py_TYPE(k);
        if (t != (PyObject *)&PyUnicode_Type)
            all_str = 0;
        if (t != e->Atom && t != (PyObject *)&PyLong_Type && t != (PyObject *)&PyBytes_Type &&
            t != (PyObject *)&PyFloat_Type && t != e->Pid && t != e->Reference && t != e->Port)
            all_distinct = 0;
        if (!all_str && !all_distinct)
            return 0;
    }
    return 1;
}

static int
enc(EState *s, PyObject *x, int depth)
{
    Encoder *e = s->e;
    PyTypeObject *t = Py_TYPE(x);
    Py_ssize_t n, i;

    if ((PyObject *)t == e->Atom)
        return e_atom(s, x);
    if (t == &PyLong_Type) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(x, &overflow);
        if (!overflow && v >= 0 && v < 256) {
            if (E_NEED(s, 2) < 0)
                return -1;
            s->buf[s->len] = 97;
            s->buf[s->len + 1] = (char)v;
            s->len += 2;
            return 0;
        }
        if (!overflow && v >= -2147483648LL && v <= 2147483647LL)
            return e_hdr(s, 98, (Py_ssize_t)(uint32_t)(int32_t)v);
        return e_big(s, x, depth);
    }
    if (t == &PyBytes_Type) {
        n = PyBytes_GET_SIZE(x);
        if ((unsigned long long)n > 0xFFFFFFFFULL)
            return e_python(s, x, depth);
        if (e_hdr(s, 109, n) < 0)
            return -1;
        return e_put(s, PyBytes_AS_STRING(x), n);
    }
    if (t == &PyTuple_Type) {
        n = PyTuple_GET_SIZE(x);
        if ((unsigned long long)n > 0xFFFFFFFFULL || (n && depth >= FAST_DEPTH))
            return e_python(s, x, depth);
        if (n < 256) {
            if (E_NEED(s, 2) < 0)
                return -1;
            s->buf[s->len] = 104;
            s->buf[s->len + 1] = (char)n;
            s->len += 2;
        }
        else if (e_hdr(s, 105, n) < 0)
            return -1;
        for (i = 0; i < n; i++)
            if (enc(s, PyTuple_GET_ITEM(x, i), depth + 1) < 0)
                return -1;
        return 0;
    }
    if (t == &PyDict_Type || (PyObject *)t == e->Map) {
        PyObject *dict = x;
        if ((PyObject *)t == e->Map) {
            PyObject *keys = SLOT(x, e->o_map_keys);
            dict = SLOT(x, e->o_map_d);
            if (keys != Py_None || dict == NULL || !PyDict_CheckExact(dict))
                return e_python(s, x, depth);
        }
        n = PyDict_GET_SIZE(dict);
        if (n == 0)
            return e_hdr(s, 116, 0);
        if ((unsigned long long)n > 0xFFFFFFFFULL || depth >= FAST_DEPTH)
            return e_python(s, x, depth);
        if (dict == x && n > 1 && !keys_stay_distinct(e, dict))
            return e_python(s, x, depth);
        if (e_hdr(s, 116, n) < 0)
            return -1;
        Py_INCREF(dict);
        i = e_dict_items(s, dict, depth + 1);
        Py_DECREF(dict);
        return (int)i;
    }
    if (t == &PyList_Type) {
        n = PyList_GET_SIZE(x);
        if (n == 0)
            return e_put(s, "j", 1);
        if (n <= 65535) {
            for (i = 0; i < n; i++) {
                PyObject *it = PyList_GET_ITEM(x, i);
                int overflow;
                long v;
                if (Py_TYPE(it) != &PyLong_Type)
                    break;
                v = PyLong_AsLongAndOverflow(it, &overflow);
                if (overflow || v < 0 || v > 255)
                    break;
            }
            if (i == n) {
                if (E_NEED(s, 3 + n) < 0)
                    return -1;
                s->buf[s->len] = 107;
                s->buf[s->len + 1] = (char)(n >> 8);
                s->buf[s->len + 2] = (char)n;
                for (i = 0; i < n; i++)
                    s->buf[s->len + 3 + i] = (char)PyLong_AsLong(PyList_GET_ITEM(x, i));
                s->len += 3 + n;
                return 0;
            }
        }
        if ((unsigned long long)n > 0xFFFFFFFFULL || depth >= FAST_DEPTH)
            return e_python(s, x, depth);
        if (e_hdr(s, 108, n) < 0)
            return -1;
        Py_INCREF(x);
        for (i = 0; i < n && i < PyList_GET_SIZE(x); i++) {
            PyObject *it = PyList_GET_ITEM(x, i);
            int rc;
            Py_INCREF(it);
            rc = enc(s, it, depth + 1);
            Py_DECREF(it);
            if (rc < 0) {
                Py_DECREF(x);
                return -1;
            }
        }
        Py_DECREF(x);
        if (i != n) {
            PyErr_SetString(PyExc_RuntimeError, "list changed size during encoding");
            return -1;
        }
        return e_put(s, "j", 1);
    }
    if (t == &PyUnicode_Type) {
        const char *u = PyUnicode_AsUTF8AndSize(x, &n);
        if (u == NULL) {
            PyErr_Clear(); /* lone surrogate: Python raises the EncodeError */
            return e_python(s, x, depth);
        }
        if ((unsigned long long)n > 0xFFFFFFFFULL)
            return e_python(s, x, depth);
        if (e_hdr(s, 109, n) < 0)
            return -1;
        return e_put(s, u, n);
    }
    if (t == &PyFloat_Type) {
        double f = PyFloat_AS_DOUBLE(x);
        if (!isfinite(f))
            return e_python(s, x, depth);
        if (E_NEED(s, 9) < 0)
            return -1;
        s->buf[s->len] = 70;
        if (PyFloat_Pack8(f, s->buf + s->len + 1, 0) < 0)
            return -1;
        s->len += 9;
        return 0;
    }
    if (t == &PyBool_Type) {
        s->saw_bool = 1;
        return x == Py_True ? e_put(s, "w\x04true", 6) : e_put(s, "w\x05" "false", 7);
    }
    if (x == Py_None) {
        s->saw_bool = 1;
        return e_put(s, "w\x09undefined", 11);
    }
    {
        int r = e_identifier(s, x, t);
        if (r < 0)
            return -1;
        if (r > 0)
            return 0;
    }
    return e_python(s, x, depth);
}

static PyObject *
Encoder_encode(Encoder *self, PyObject *const *args, Py_ssize_t nargs)
{
    EState *s;
    int rc;
    if (nargs != 3 || !PyByteArray_CheckExact(args[1]) || !PyList_CheckExact(args[2]) ||
        PyList_GET_SIZE(args[2]) != 2) {
        PyErr_SetString(PyExc_TypeError, "encode(term, out: bytearray, flags: [bool, bool])");
        return NULL;
    }
    s = PyMem_Malloc(sizeof(EState));
    if (s == NULL)
        return PyErr_NoMemory();
    s->e = self;
    s->out = args[1];
    s->flags = args[2];
    s->buf = s->stack_buf;
    s->len = 0;
    s->cap = sizeof(s->stack_buf);
    s->saw_old = s->saw_bool = 0;
    rc = enc(s, args[0], 0);
    if (e_flush(s) < 0)
        rc = -1;
    if (s->saw_old && PyList_SetItem(args[2], 0, Py_NewRef(Py_True)) < 0)
        rc = -1;
    if (s->saw_bool && PyList_SetItem(args[2], 1, Py_NewRef(Py_True)) < 0)
        rc = -1;
    if (s->buf != s->stack_buf)
        PyMem_Free(s->buf);
    PyMem_Free(s);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int
Encoder_init(Encoder *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"Atom", "Map", "Pid", "Reference", "Port", "atom_slow", "fast_encode", NULL};
    PyObject *o[7];
    int i;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOO", kwlist, &o[0], &o[1], &o[2], &o[3], &o[4], &o[5],
                                     &o[6]))
        return -1;
    for (i = 0; i < 7; i++)
        Py_INCREF(o[i]);
    Py_XSETREF(self->Atom, o[0]);
    Py_XSETREF(self->Map, o[1]);
    Py_XSETREF(self->Pid, o[2]);
    Py_XSETREF(self->Reference, o[3]);
    Py_XSETREF(self->Port, o[4]);
    Py_XSETREF(self->atom_slow, o[5]);
    Py_XSETREF(self->fast_encode, o[6]);
    if (!PyType_Check(self->Atom) || !PyType_Check(self->Map) || !PyType_Check(self->Pid) ||
        !PyType_Check(self->Reference) || !PyType_Check(self->Port)) {
        PyErr_SetString(PyExc_TypeError, "Encoder: bad types");
        return -1;
    }
    if ((self->o_ext = slot_offset(self->Atom, "_ext")) < 0 ||
        (self->o_old = slot_offset(self->Atom, "_old")) < 0 ||
        (self->o_map_d = slot_offset(self->Map, "_d")) < 0 ||
        (self->o_map_keys = slot_offset(self->Map, "_keys")) < 0 ||
        (self->o_pid[0] = slot_offset(self->Pid, "node")) < 0 ||
        (self->o_pid[1] = slot_offset(self->Pid, "id")) < 0 ||
        (self->o_pid[2] = slot_offset(self->Pid, "serial")) < 0 ||
        (self->o_pid[3] = slot_offset(self->Pid, "creation")) < 0 ||
        (self->o_ref[0] = slot_offset(self->Reference, "node")) < 0 ||
        (self->o_ref[1] = slot_offset(self->Reference, "creation")) < 0 ||
        (self->o_ref[2] = slot_offset(self->Reference, "ids")) < 0 ||
        (self->o_port[0] = slot_offset(self->Port, "node")) < 0 ||
        (self->o_port[1] = slot_offset(self->Port, "id")) < 0 ||
        (self->o_port[2] = slot_offset(self->Port, "creation")) < 0 ||
        (self->o_port[3] = slot_offset(self->Port, "v4")) < 0)
        return -1;
    return 0;
}

static int
Encoder_traverse(Encoder *self, visitproc visit, void *arg)
{
    Py_VISIT(self->Atom);
    Py_VISIT(self->Map);
    Py_VISIT(self->Pid);
    Py_VISIT(self->Reference);
    Py_VISIT(self->Port);
    Py_VISIT(self->atom_slow);
    Py_VISIT(self->fast_encode);
    return 0;
}

static int
Encoder_clear(Encoder *self)
{
    Py_CLEAR(self->Atom);
    Py_CLEAR(self->Map);
    Py_CLEAR(self->Pid);
    Py_CLEAR(self->Reference);
    Py_CLEAR(self->Port);
    Py_CLEAR(self->atom_slow);
    Py_CLEAR(self->fast_encode);
    return 0;
}

static void
Encoder_dealloc(Encoder *self)
{
    PyObject_GC_UnTrack(self);
    Encoder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Encoder_methods[] = {
    {"encode", (PyCFunction)(void (*)(void))Encoder_encode, METH_FASTCALL,
     "encode(term, out, flags) -> None: append the default-mode encoding of term to out"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject EncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "erl_interop.term._speedups.Encoder",
    .tp_basicsize = sizeof(Encoder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "ETF default-mode encoder for the common types; see encode.py.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Encoder_init,
    .tp_traverse = (traverseproc)Encoder_traverse,
    .tp_clear = (inquiry)Encoder_clear,
    .tp_dealloc = (destructor)Encoder_dealloc,
    .tp_methods = Encoder_methods,
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "erl_interop.term._speedups",
    .m_doc = "Optional C accelerator for erl_interop.term (see docs/internals/term.md).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *m;
    const char *pure = getenv("ERL_INTEROP_PURE_PYTHON");
    /* ERL_INTEROP_PURE_PYTHON=1 (any non-empty value but "0") forces the pure-Python codec. */
    if (pure != NULL && pure[0] != '\0' && strcmp(pure, "0") != 0) {
        PyErr_SetString(PyExc_ImportError, "erl_interop.term._speedups disabled by ERL_INTEROP_PURE_PYTHON");
        return NULL;
    }
    if (PyType_Ready(&DecoderType) < 0 || PyType_Ready(&EncoderType) < 0)
        return NULL;
    m = PyModule_Create(&speedups_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&DecoderType);
    if (PyModule_AddObject(m, "Decoder", (PyObject *)&DecoderType) < 0) {
        Py_DECREF(&DecoderType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&EncoderType);
    if (PyModule_AddObject(m, "Encoder", (PyObject *)&EncoderType) < 0) {
        Py_DECREF(&EncoderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
